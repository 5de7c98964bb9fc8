#!/usr/bin/env python3
"""One large message to many slow readers costs the gateway one copy.

A guest may post an image of up to --max-message (1 MiB) to a room; the
gateway appends it to the output of every local member.  If each output held
its own copy, 100 members that read slowly (or not at all) would pin 100 MiB
of gateway memory per image.  Fan-out payloads from 8 KiB on are shared by
reference (gateway/frame.c, gw_blob), so the gateway's RSS grows by about
one copy.

Starts its own redis-server and chat-gateway on loopback (stopped by PID);
--members clients join one room with a 4 KiB receive buffer and stop
reading; one more member reads; a sender posts a ~900 KiB image.  Passes
when the sender gets its ack, the reading member gets the image intact,
the gateway's RSS grew by less than --max-growth MiB (default 40, for
sanitizer builds' allocator overhead; one copy per member would be ~180 MiB
with the default 200 members), the gateway
still answers /healthz and exits 0 on SIGTERM.

    fanout_memory.py --gateway PATH [--members N] [--max-growth MIB]
"""
import argparse, base64, os, re, signal, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402  (WS client, login, redis and process helpers)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class SlowWS(hostile.WS):
    """A member whose socket holds at most a few KiB: what it does not read
    stays in the gateway's output buffer."""

    def __init__(self, port, token, proxy_src=None):
        super().__init__(port, token, rcvbuf=4096, proxy_src=proxy_src)


def next_text(ws, timeout):
    """The next text frame's object, or None (timeout, close, end)."""
    e = ws.event(timeout)
    while e[0] in ("pong", "binary"):
        e = ws.event(timeout)
    return e[1] if e[0] == "text" else None


def joined(ws, timeout):
    """The `joined` answer to a join, other frames skipped, or None when none
    came within timeout (or the connection ended)."""
    end = time.time() + timeout
    while time.time() < end:
        f = next_text(ws, max(0.1, end - time.time()))
        if f is None:
            return None
        if f.get("type") == "joined":
            return f
    return None


def join(ws, room):
    ws.send({"type": "join", "room": room, "id": "j"})
    if not joined(ws, 10):
        raise RuntimeError("no joined")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--max-growth", type=float, default=40.0, help="MiB (default 40)")
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("fanout_memory: watchdog expired"))
    signal.alarm(150)
    tmp = tempfile.mkdtemp(prefix="chatgw-fanout-memory-")
    redis, redis_port = hostile.start_redis(tmp)
    gw, log = hostile.start_gateway(args.gateway, tmp, redis_port, "fanout",
                                    ["--rate", "1000/1000", "--login-rate", "0",
                                     "--max-conns-per-ip", "0", "--deflate", "off",
                                     "--drain-grace", "0"])
    failures = []
    try:
        port = hostile.wait_listening(log, gw)
        if port is None:
            sys.exit("fanout_memory: gateway did not start (see %s)" % log)
        members = []
        for i in range(args.members):
            ws = SlowWS(port, hostile.login(port, f"slow{i}")["token"])
            join(ws, "gallery")
            members.append(ws)
        reader = hostile.WS(port, hostile.login(port, "reader")["token"])
        join(reader, "gallery")
        sender = hostile.WS(port, hostile.login(port, "sender")["token"])
        join(sender, "gallery")
        time.sleep(1)  # join and presence traffic settles
        before = rss_kib(gw.pid)
        image = "data:image/png;base64," + base64.b64encode(os.urandom(675 * 1024)).decode()
        sender.send({"type": "message", "room": "gallery", "kind": "image", "body": image,
                     "id": "big"})
        acked = got = False
        end = time.time() + 30
        while time.time() < end and not (acked and got):
            if not acked:
                f = next_text(sender, 0.2)
                acked = bool(f and f.get("type") == "ack" and f.get("id") == "big")
            if not got:
                f = next_text(reader, 0.2)
                got = bool(f and f.get("type") == "message" and f.get("body") == image)
        time.sleep(1)
        growth = (rss_kib(gw.pid) - before) / 1024.0
        print(f"# {args.members} slow members, image {len(image)} bytes: gateway RSS "
              f"{before / 1024:.1f} MiB -> +{growth:.1f} MiB")
        if not acked:
            failures.append("the sender got no ack")
        if not got:
            failures.append("the reading member did not get the image intact")
        if growth >= args.max_growth:
            failures.append(f"gateway RSS grew by {growth:.1f} MiB (limit {args.max_growth})")
        status, _ = hostile.http(port, "GET", "/healthz")
        if status != 200:
            failures.append(f"/healthz {status}")
        for ws in members + [reader, sender]:
            ws.s.close()
    finally:
        if sys.exc_info()[0] is not None:
            failures.append("stopped by an exception (below)")
        status = hostile.finish(failures, gw, redis, log,
                                "one shared copy for every slow member; the reader got it intact")
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Joins of a room full of large images cost what they return, not the room.

A room's history may hold 200 images of up to --max-message (1 MiB) each,
and a `joined` reply carries at most 4 MiB of them (PROTOCOL.md).  Before,
the history script copied the whole page asked for (50 images, 50 MiB) into
Lua and trimmed it there, so a few joins a second kept Redis busy for
everyone, and twenty at once held the gateway's command connection long
enough for its hang watchdog to drop Redis, close every session with 1011
and answer logins 503.

Starts its own redis-server and chat-gateway on loopback (stopped by PID);
a poster fills a room with --images images of ~1 MiB; --joins connections
of one guest join it at once and do not read; then a reader joins.  Passes
when: the gateway logged no redis_hung and closed no session with 1011,
/healthz is 200, the reader's `joined` carries the newest images that fit
in 4 MiB with `more: true`, Redis ran no LRANGE while serving the joins and
at most (images in the replies + 2 per join) LINDEX, and the gateway exits
0 on SIGTERM.

    heavy_room.py --gateway PATH [--images N] [--joins N]
"""
import argparse, base64, os, re, signal, socket, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
from fanout_memory import SlowWS, join, joined, next_text  # noqa: E402


def redis_cmd(port, *args):
    """One command over a raw socket; the reply's bytes (a status line or a
    bulk string's content)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)
    s.sendall(req.encode())
    data = b""
    while b"\r\n" not in data:
        data += s.recv(65536)
    head, rest = data.split(b"\r\n", 1)
    if head.startswith(b"$"):
        n = int(head[1:])
        while len(rest) < n + 2:
            rest += s.recv(65536)
        data = rest[:n]
    s.close()
    return data.decode(errors="replace")


def post_images(poster, room, n, log):
    """poster joins room and posts n images of ~1 MiB (the same one), each
    acked; returns the image's body."""
    join(poster, room)
    image = "data:image/png;base64," + base64.b64encode(os.urandom(760 * 1024)).decode()
    for i in range(n):
        poster.send({"type": "message", "room": room, "kind": "image", "body": image,
                     "id": f"i{i}"})
        f = next_text(poster, 30)
        while f and f.get("type") != "ack":
            f = next_text(poster, 30)
        if not f:
            sys.exit(f"image {i} got no ack (see {log})")
    return image


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--joins", type=int, default=20)
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("heavy_room: watchdog expired"))
    signal.alarm(240)
    tmp = tempfile.mkdtemp(prefix="chatgw-heavy-room-")
    redis, redis_port = hostile.start_redis(tmp)
    gw, log = hostile.start_gateway(args.gateway, tmp, redis_port, "heavy",
                                    ["--rate", "1000/1000", "--login-rate", "0",
                                     "--max-conns-per-ip", "0", "--large-message-rate",
                                     "1073741824", "--deflate", "off", "--drain-grace", "0"])
    failures = []
    try:
        port = hostile.wait_listening(log, gw)
        if port is None:
            sys.exit("heavy_room: gateway did not start (see %s)" % log)
        poster = hostile.WS(port, hostile.login(port, "poster")["token"])
        image = post_images(poster, "pics", args.images, log)
        redis_cmd(redis_port, "CONFIG", "RESETSTAT")
        token = hostile.login(port, "joiner")["token"]
        slow = []
        for _ in range(args.joins):
            ws = SlowWS(port, token)
            ws.send({"type": "join", "room": "pics", "id": "j"})
            slow.append(ws)
        time.sleep(3)
        reader, f = None, None
        try:
            reader = hostile.WS(port, hostile.login(port, "reader")["token"])
        except (AssertionError, OSError, EOFError) as e:
            failures.append(f"the reader could not connect: {e}")
        if reader:
            reader.send({"type": "join", "room": "pics", "id": "j"})
            f = joined(reader, 30)
        stats = redis_cmd(redis_port, "INFO", "commandstats")
        text = open(log, errors="replace").read()
        if "redis_hung" in text:
            failures.append("the gateway logged redis_hung")
        if "close_sent=1011" in text:
            failures.append("sessions were closed with 1011")
        status, _ = hostile.http(port, "GET", "/healthz")
        if status != 200:
            failures.append(f"/healthz {status}")
        if not f:
            failures.append("the reader got no joined")
        else:
            msgs = f.get("messages", [])
            size = sum(len(m.get("body", "")) for m in msgs)
            print(f"# joined: {len(msgs)} images, {size} bytes of bodies, more={f.get('more')}")
            if not msgs or size > 4 * 1024 * 1024 or f.get("more") is not True or \
                    msgs[-1].get("body") != image:
                failures.append("the reader's joined is not the newest images under 4 MiB "
                                "with more: true")
            per_join = len(msgs)
            lindex = re.search(r"cmdstat_lindex:calls=(\d+)", stats)
            calls = int(lindex.group(1)) if lindex else 0
            limit = (args.joins + 1) * (per_join + 2)
            print(f"# Redis while serving {args.joins + 1} joins: {calls} LINDEX (limit {limit}),"
                  f" LRANGE {'yes' if 'cmdstat_lrange:' in stats else 'none'}")
            if calls > limit or "cmdstat_lrange:" in stats:
                failures.append("the joins read more of the history than they returned")
        for ws in slow + [reader, poster]:
            if ws:
                ws.s.close()
    finally:
        if sys.exc_info()[0] is not None:
            failures.append("stopped by an exception (below)")
        status = hostile.finish(failures, gw, redis, log, "joins of a room full of images cost "
                                "what they return; Redis stayed up")
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One address's unread answers are bounded, and only that address waits.

A `joined` or `history` answer may carry up to 4 MiB of images.  A guest
with --max-conns-per-ip (256) connections that each join a room full of
images and never read would pin ~3 MiB of gateway memory per connection,
~800 MiB from one address.  With per-address limits on, the large answers an
address has not read are capped at 32 MiB between its connections (conn.h,
GW_ADDR_HELD_MAX); its further join/history/search requests wait until it
reads or closes, while other addresses are served as usual.

Starts its own redis-server and chat-gateway on loopback (stopped by PID),
with --trusted-proxies 127.0.0.1 so that each test client names its address
in a PROXY v2 header, as HAProxy does.  A poster fills a room with --images
images of ~1 MiB; the guest (192.0.2.1) opens --joins connections that
each join the room and never read.  Passes when: the gateway's RSS grew by
at most --max-growth MiB (one answer per connection would be ~3 MiB each),
chat_answers_waited_total counts the waiting joins, a reader from another
address gets its `joined` (the newest images under 4 MiB) at once, a
reader from the guest's address gets none while the guest's connections
hold their answers and gets it within 5 s of their closing, and the
gateway still answers /healthz and exits 0 on SIGTERM.

    unread_answers.py --gateway PATH [--images N] [--joins N] [--max-growth MIB]
"""
import argparse, os, re, signal, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
from fanout_memory import SlowWS, joined, rss_kib  # noqa: E402
from heavy_room import post_images  # noqa: E402

GUEST = "192.0.2.1"
OTHER = "198.51.100.2"


def metric(port, name):
    status, body = hostile.http(port, "GET", "/metrics")
    m = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if status == 200 and m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--joins", type=int, default=60)
    ap.add_argument("--max-growth", type=int, default=100,
                    help="MiB; 32 MiB of answers plus the allocator's share (ASan's quarantine "
                    "keeps what the served joins freed: +53 to +77 MiB there); one answer per "
                    "connection would be ~180 MiB")
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("unread_answers: watchdog expired"))
    signal.alarm(240)
    tmp = tempfile.mkdtemp(prefix="chatgw-unread-answers-")
    redis, redis_port = hostile.start_redis(tmp)
    gw, log = hostile.start_gateway(args.gateway, tmp, redis_port, "unread",
                                    ["--rate", "1000/1000", "--login-rate", "0",
                                     # the default, whatever CHAT_MAX_CONNS_PER_IP says
                                     # (tests/run sets it to 0)
                                     "--max-conns-per-ip", "256",
                                     "--trusted-proxies", "127.0.0.1", "--large-message-rate",
                                     "1073741824", "--deflate", "off", "--drain-grace", "0"])
    failures = []
    slow = []
    try:
        port = hostile.wait_listening(log, gw)
        if port is None:
            sys.exit("unread_answers: gateway did not start (see %s)" % log)
        poster = hostile.WS(port, hostile.login(port, "poster")["token"], proxy_src=OTHER)
        image = post_images(poster, "pics", args.images, log)
        waited_before = metric(port, "chat_answers_waited_total")
        rss_before = rss_kib(gw.pid)
        token = hostile.login(port, "guest")["token"]
        for _ in range(args.joins):
            ws = SlowWS(port, token, proxy_src=GUEST)
            ws.send({"type": "join", "room": "pics", "id": "j"})
            slow.append(ws)
        # Until the gateway has answered what it will answer: its RSS stops
        # growing (at least 2 s, at most 20).
        start, last = time.time(), rss_kib(gw.pid)
        while time.time() - start < 20:
            time.sleep(0.5)
            now = rss_kib(gw.pid)
            if time.time() - start >= 2 and now - last < 1024:
                break
            last = now
        growth = (rss_kib(gw.pid) - rss_before) / 1024
        waited = metric(port, "chat_answers_waited_total")
        print(f"# {args.joins} unread joins from one address: gateway RSS +{growth:.1f} MiB, "
              f"chat_answers_waited_total {waited_before} -> {waited}")
        if growth > args.max_growth:
            failures.append(f"RSS grew by {growth:.1f} MiB (limit {args.max_growth})")
        if waited is None or waited_before is None or waited - waited_before < args.joins // 2:
            failures.append("chat_answers_waited_total did not count the waiting joins")

        other = hostile.WS(port, hostile.login(port, "other")["token"], proxy_src=OTHER)
        other.send({"type": "join", "room": "pics", "id": "j"})
        f = joined(other, 10)
        if not f:
            failures.append("a reader from another address got no joined")
        elif not f.get("messages") or f["messages"][-1].get("body") != image or \
                f.get("more") is not True:
            failures.append("the other reader's joined is not the newest images with more: true")

        same = hostile.WS(port, hostile.login(port, "neighbour")["token"], proxy_src=GUEST)
        same.send({"type": "join", "room": "pics", "id": "j"})
        if joined(same, 2):
            failures.append("a join from the guest's address was answered while its unread "
                            "answers were at the cap")
        for ws in slow:
            ws.s.close()
        slow = []
        start = time.time()
        f = joined(same, 5)
        if not f:
            failures.append("the guest address's join was not answered within 5 s of its "
                            "connections closing")
        else:
            print(f"# the waiting join from the guest's address answered "
                  f"{time.time() - start:.2f} s after the guest's connections closed")
        status, _ = hostile.http(port, "GET", "/healthz")
        if status != 200:
            failures.append(f"/healthz {status}")
        for ws in (poster, other, same):
            ws.s.close()
    finally:
        for ws in slow:
            ws.s.close()
        if sys.exc_info()[0] is not None:
            failures.append("stopped by an exception (below)")
        status = hostile.finish(failures, gw, redis, log, "one address's unread answers are "
                                "bounded; other addresses are served")
    return status


if __name__ == "__main__":
    sys.exit(main())

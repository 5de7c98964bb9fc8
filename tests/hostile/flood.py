#!/usr/bin/env python3
"""One guest, many sockets, never reading: the attacker of the flood
benchmark (docs/benchmarks.md, "Hostile clients").

Logs in once (one anonymous guest) and opens --conns WebSocket connections
with that token; after the handshake it never reads again and writes as fast
as the kernel takes it, for --duration seconds:

  ping        masked WebSocket ping control frames (6 bytes each)
  json-ping   {"type":"ping"} text frames
  frames      text frames of --frame-size bytes (default: the gateway's
              --max-message default, 1 MiB), each a well-formed chat
              `message` request with a huge body, so the gateway must read
              and parse all of it

A connection the gateway closes is opened again at once (counted).  SIGTERM
ends the flood early.  Prints one JSON line of totals at the end.  Loopback or any ws:// URL.

    flood.py --url ws://127.0.0.1:P/ws --mode ping|json-ping|frames
             [--conns 100] [--duration 30] [--frame-size BYTES]
"""
import argparse, base64, errno, json, os, selectors, signal, socket, struct, sys, time
import urllib.parse, urllib.request


def mask_frame(payload, opcode):
    mask = os.urandom(4)
    n = len(payload)
    h = bytes([0x80 | opcode])
    if n < 126:
        h += bytes([0x80 | n])
    elif n < 65536:
        h += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        h += bytes([0x80 | 127]) + struct.pack(">Q", n)
    # XOR with a repeating 4-byte key, fast enough for megabytes.
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") \
        if n else b""
    return h + mask + body


def build_chunk(mode, frame_size):
    if mode == "ping":
        return mask_frame(b"", 9) * 10000  # 60 KB per write
    if mode == "json-ping":
        return mask_frame(b'{"type":"ping"}', 1) * 2500
    head = b'{"type":"message","room":"flood","kind":"text","body":"'
    tail = b'"}'
    return mask_frame(head + b"x" * (frame_size - len(head) - len(tail)) + tail, 1)


class Conn:
    def __init__(self, host, port, path):
        self.s = socket.socket()
        self.s.setblocking(False)
        self.s.connect_ex((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.out = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.inp = b""
        self.open = False  # handshake done: from now on write only
        self.off = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", choices=["ping", "json-ping", "frames"], required=True)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--frame-size", type=int, default=1048576)
    ap.add_argument("--nick", default=f"flood-{os.getpid()}")
    args = ap.parse_args()

    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80
    req = urllib.request.Request(f"http://{host}:{port}/api/login", method="POST",
                                 data=json.dumps({"nickname": args.nick}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        token = json.loads(r.read())["token"]
    path = f"{u.path or '/ws'}?token={token}"
    chunk = build_chunk(args.mode, args.frame_size)
    view = memoryview(chunk)

    sel = selectors.DefaultSelector()
    stats = {"mode": args.mode, "conns": args.conns, "opened": 0, "upgraded": 0, "refused": 0,
             "closed_by_gateway": 0, "bytes_sent": 0}

    def open_one():
        c = Conn(host, port, path)
        stats["opened"] += 1
        sel.register(c.s, selectors.EVENT_WRITE | selectors.EVENT_READ, c)

    def drop(c, counted):
        sel.unregister(c.s)
        c.s.close()
        stats[counted] += 1
        open_one()

    for _ in range(args.conns):
        open_one()
    end = time.monotonic() + args.duration
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, ev in sel.select(min(left, 0.5)):
            c = key.data
            try:
                if not c.open:
                    if ev & selectors.EVENT_WRITE and c.out:
                        n = c.s.send(c.out)
                        c.out = c.out[n:]
                        if not c.out:
                            sel.modify(c.s, selectors.EVENT_READ, c)
                    if ev & selectors.EVENT_READ:
                        d = c.s.recv(4096)
                        if not d:
                            drop(c, "refused")
                            continue
                        c.inp += d
                        if b"\r\n\r\n" in c.inp:
                            if not c.inp.startswith(b"HTTP/1.1 101"):
                                drop(c, "refused")
                                continue
                            c.open = True
                            stats["upgraded"] += 1
                            # Never read again: only the writes matter now.
                            sel.modify(c.s, selectors.EVENT_WRITE, c)
                    continue
                while True:
                    n = c.s.send(view[c.off:])
                    stats["bytes_sent"] += n
                    c.off = (c.off + n) % len(chunk)
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ENOTCONN):
                    drop(c, "closed_by_gateway" if c.open else "refused")
                else:
                    raise
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

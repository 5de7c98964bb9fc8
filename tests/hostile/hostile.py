#!/usr/bin/env python3
"""Hostile input against a real gateway: random and malformed HTTP, oversized
heads and bodies, random WebSocket frames and opcodes, mutated chat requests.

Starts its own redis-server and chat-gateway (port 0, read from the log) on
loopback, stops both by PID, and passes when the gateway stayed up, still
answers /healthz and a well-formed chat round trip, exits 0 on SIGTERM, and
logged no sanitizer report.  Seeds are fixed, so a failure replays.

    hostile.py --gateway PATH [--seeds N] [--rounds N]
"""
import argparse, base64, json, os, random, re, signal, socket, struct, subprocess, sys
import tempfile, time, urllib.error, urllib.request

SECRET = "hostile-test-secret-0123456789abcdef0123"


class WS:
    """A minimal RFC 6455 client that can also send what no client should."""

    def __init__(self, port, token):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError("closed during handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise EOFError(head.split(b"\r\n")[0].decode(errors="replace"))

    def send(self, data, opcode=1, fin=True):
        if isinstance(data, (dict, list)):
            data = json.dumps(data).encode()
        mask = os.urandom(4)
        n = len(data)
        h = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            h += bytes([0x80 | n])
        elif n < 65536:
            h += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            h += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self, timeout=3):
        self.s.settimeout(timeout)
        while True:
            while len(self.buf) < 2:
                self._more()
            op, n, off = self.buf[0] & 15, self.buf[1] & 127, 2
            if n == 126:
                while len(self.buf) < 4:
                    self._more()
                n, off = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                while len(self.buf) < 10:
                    self._more()
                n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
            while len(self.buf) < off + n:
                self._more()
            data, self.buf = self.buf[off:off + n], self.buf[off + n:]
            if op == 8:
                raise EOFError("closed")
            if op == 1:
                return json.loads(data)

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("eof")
        self.buf += d


def http(port, method, path, body=None, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def login(port, nick):
    status, body = http(port, "POST", "/api/login", json.dumps({"nickname": nick}).encode())
    assert status == 200, f"login {nick}: {status} {body[:200]!r}"
    return json.loads(body)


def raw_http_round(port, rnd):
    for _ in range(120):
        kind = rnd.random()
        if kind < 0.3:
            data = rnd.randbytes(rnd.randint(1, 3000))
        elif kind < 0.5:
            data = (b"GET /" + rnd.randbytes(rnd.randint(0, 200)) + b" HTTP/1.1\r\nHost: x\r\nX: "
                    + rnd.randbytes(50) + b"\r\n\r\n")
        else:
            headers = "".join(f"H{j}: {'a' * rnd.randint(0, 300)}\r\n"
                              for j in range(rnd.randint(0, 120)))
            method = rnd.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "BREW"])
            path = rnd.choice(["/ws", "/api/login", "/api/me", "/healthz", "/metrics", "/",
                               "/%2e%2e/etc/passwd", "/echo", "/api/rooms", "/index.html"])
            body = rnd.randbytes(rnd.randint(0, 70000)) if rnd.random() < 0.3 else b""
            chunked = rnd.random() < 0.2
            te = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
            if chunked:
                body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            data = (f"{method} {path}?token={'x' * rnd.randint(0, 9000)} "
                    f"HTTP/1.{rnd.randint(0, 2)}\r\n{headers}{te}Upgrade: websocket\r\n"
                    "Connection: upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode() + body
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(data)
            s.recv(100)
        except OSError:
            pass
        finally:
            s.close()


TYPES = ["join", "leave", "message", "private", "history", "search", "rooms", "create_room",
         "users", "typing", "broadcast", "ping", "bogus", 7, None]
FIELDS = ["room", "to", "with", "kind", "body", "lang", "since", "before", "after", "limit",
          "q", "user", "topic", "id", "type"]
VALUES = [None, 0, -1, 2 ** 63, -2 ** 63, 1.5, "", "general", "x" * 40, "💥" * 5000, [], {},
          True, "a\u0000b", "data:image/png;base64,AAAA", "Général", "text", "code", "image",
          "../../etc", "{general}", "a:b", "\u202e", "x" * 60000]


def ws_round(port, token, rnd):
    """50 mutated requests that must not close the connection (checked with a
    ping afterwards), then one frame that may: random bytes, odd opcodes,
    broken fragmentation.  Returns True when the connection survived phase 1."""
    w = WS(port, token)
    w.recv()
    for _ in range(50):
        r = rnd.random()
        if r < 0.8:
            frame = b"x" * 70000
            while len(frame) > 65000:  # over --max-message would close, rightly
                obj = {"type": rnd.choice(TYPES)}
                for k in rnd.sample(FIELDS, rnd.randint(0, 6)):
                    obj[k] = rnd.choice(VALUES)
                frame = json.dumps(obj, ensure_ascii=rnd.random() < 0.5).encode()
            w.send(frame)
        elif r < 0.9:
            msg = json.dumps({"type": "message", "room": "general", "kind": "text",
                              "body": "x" * rnd.randint(0, 5000)})
            w.send(msg[:rnd.randint(1, 200)].encode())
        else:
            w.send(json.dumps(rnd.choice(VALUES)).encode())
    w.send({"type": "ping", "id": "alive"})
    survived = False
    try:
        end = time.time() + 10
        while time.time() < end:
            f = w.recv(5)
            if f.get("type") == "pong" and f.get("id") == "alive":
                survived = True
                break
    except (OSError, EOFError, ValueError):
        pass
    try:
        r = rnd.random()
        if r < 0.3:
            w.send(rnd.randbytes(rnd.randint(1, 300)))
        elif r < 0.4:
            w.send(b"x" * 70000)  # over --max-message: 1009
        elif r < 0.7:
            w.send(rnd.randbytes(rnd.randint(0, 200)), opcode=rnd.choice([0, 2, 3, 8, 9, 10, 15]),
                   fin=rnd.random() < 0.8)
        else:
            w.send(b'{"type":"ping"', fin=False)
            w.send(rnd.randbytes(rnd.randint(0, 50)), opcode=rnd.choice([0, 1, 9]))
        for _ in range(10):
            w.recv(0.2)
    except (OSError, EOFError, ValueError):
        pass
    w.s.close()
    return survived


def wait_listening(log, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return None
        m = re.search(r"msg=listening .* port=(\d+)", open(log, errors="replace").read())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    return None


def start_redis(tmp):
    for _ in range(5):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", tmp],
                             stdout=open(os.path.join(tmp, "redis.log"), "w"),
                             stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return p, port
            except OSError:
                if p.poll() is not None:
                    break
                time.sleep(0.05)
        p.kill()
        p.wait()
    raise RuntimeError("redis-server did not start")


def stop(p, timeout=12):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None
    return p.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("hostile: watchdog expired"))
    signal.alarm(300)

    passed = failed = 0

    def check(what, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok - {what}")
        else:
            failed += 1
            print(f"not ok - {what} {detail}")

    tmp = tempfile.mkdtemp(prefix="chatgw-hostile-")
    redis, redis_port = start_redis(tmp)
    log = os.path.join(tmp, "gw.log")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    gw = subprocess.Popen([args.gateway, "--port", "0", "--bind", "127.0.0.1", "--redis",
                           f"redis://127.0.0.1:{redis_port}/0", "--jwt-secret", SECRET,
                           "--node-id", "hostile", "--echo", "--rate", "1000/1000",
                           "--max-message", "65536", "--drain-grace", "0"],
                          stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        port = wait_listening(log, gw)
        check("gateway starts", port is not None)
        if port is None:
            return 1
        for seed in range(1, args.seeds + 1):
            rnd = random.Random(seed)
            raw_http_round(port, rnd)
            token = login(port, f"hostile{seed}")["token"]
            survived = 0
            for _ in range(args.rounds):
                try:
                    survived += ws_round(port, token, rnd)
                except (OSError, EOFError) as e:
                    print(f"# round failed: {e!r}")
            check(f"seed {seed}: malformed requests never closed the connection",
                  survived == args.rounds, f"({survived} of {args.rounds} survived)")
            check(f"seed {seed}: gateway alive after hostile HTTP and WebSocket input",
                  gw.poll() is None, f"(exit {gw.returncode})")
            status, body = http(port, "GET", "/healthz")
            check(f"seed {seed}: /healthz still 200", status == 200, f"({status} {body[:100]!r})")
        # A well-formed conversation still works afterwards.
        a, b = login(port, "after-a"), login(port, "after-b")
        wa, wb = WS(port, a["token"]), WS(port, b["token"])
        for w in (wa, wb):
            w.recv()
            w.send({"type": "join", "room": "general", "id": "j"})
            while w.recv().get("type") != "joined":
                pass
        wa.send({"type": "message", "room": "general", "kind": "text", "body": "still here",
                 "id": "m"})
        got = None
        end = time.time() + 5
        while time.time() < end:
            f = wb.recv()
            if f.get("type") == "message" and f.get("body") == "still here":
                got = f
                break
        check("a normal message round trip works afterwards", got is not None)
    finally:
        code = stop(gw)
        stop(redis)
    check("gateway exits 0 on SIGTERM", code == 0, f"(exit {code})")
    text = open(log, errors="replace").read()
    bad = [l for l in text.splitlines()
           if "ERROR: AddressSanitizer" in l or "runtime error" in l or "LeakSanitizer" in l]
    check("no sanitizer report in the gateway log", not bad, "\n".join(bad[:5]))
    if failed == 0:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print(f"logs kept in {tmp}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Hostile input against a real gateway: random and malformed HTTP, oversized
heads and bodies, random WebSocket frames and opcodes, mutated chat requests.

Starts its own redis-server and chat-gateway (port 0, read from the log) on
loopback, stops both by PID, and passes when

- every mutated HTTP request got an expected status (an error from 400, 401,
  403, 404, 405, 408, 409, 413, 426, 429, 431, 503, or a success where the
  request happened to be valid), every error with the JSON error shape
  {"error":{"code","message"}}, and a garbage request at most a silent close;
- every `error` frame a mutated chat request got has a code of the protocol
  (section 4; never `internal`), and those requests never closed the socket;
- every frame that may end a WebSocket got what its kind calls for: a close
  with 1002, 1003, 1007, 1008 or 1009, an error frame with a valid code, a
  pong, or nothing (an unfinished message);
- the gateway stayed up, still answers /healthz and a well-formed chat round
  trip, exits 0 on SIGTERM, and logged no sanitizer report.

The run's seed is random and printed first; `--seed N` (or CHAT_HOSTILE_SEED=N)
replays it exactly.

    hostile.py --gateway PATH [--seed N] [--seeds N] [--rounds N]
"""
import argparse, base64, json, os, random, re, signal, socket, struct, subprocess, sys
import tempfile, time, urllib.error, urllib.request
from collections import Counter

SECRET = "hostile-test-secret-0123456789abcdef0123"


def proxy_v2(src):
    """A PROXY v2 header for a TCP/IPv4 client at src (to 127.0.0.1), as
    HAProxy's send-proxy-v2 writes it."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack(">HH", 40000, 1)
    return sig + bytes([0x21, 0x11]) + struct.pack(">H", len(addrs)) + addrs


class WS:
    """A minimal RFC 6455 client that can also send what no client should.
    rcvbuf: a small receive buffer, so that what it does not read stays in the
    gateway's output; proxy_src: the connection starts with a PROXY v2 header
    naming that client address (for a gateway that trusts 127.0.0.1)."""

    def __init__(self, port, token, rcvbuf=None, proxy_src=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        if proxy_src:
            self.s.sendall(proxy_v2(proxy_src))
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
        # XOR with the repeated key as one big integer: fast enough for megabytes.
        key = (mask * (n // 4 + 1))[:n]
        body = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") \
            if n else b""
        self.s.sendall(h + mask + body)

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

    def event(self, timeout):
        """The next frame as ('text', obj) / ('close', code or None, reason) /
        ('pong', payload) / ('binary', data), or ('eof',) / ('timeout',)."""
        self.s.settimeout(timeout)
        try:
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
                    code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
                    return ("close", code, data[2:].decode(errors="replace"))
                if op == 1:
                    return ("text", json.loads(data))
                if op == 2:
                    return ("binary", data)
                if op == 10:
                    return ("pong", data)
                # a server ping (op 9): not what we wait for
        except socket.timeout:
            return ("timeout",)
        except (EOFError, ConnectionError):
            return ("eof",)

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


HTTP_ERRORS = {400, 401, 403, 404, 405, 408, 409, 413, 426, 429, 431, 503}
HTTP_SUCCESS = {101, 200, 204, 304}
ERROR_CODES = {"bad_request", "unauthorized", "forbidden", "not_found", "not_member", "conflict",
               "too_large", "rate_limited", "unavailable", "limit"}
WS_CLOSE_CODES = {1002, 1003, 1007, 1008, 1009}


def json_error_shape(body):
    """True when body is {"error":{"code":"...","message":"..."}}."""
    try:
        e = json.loads(body)["error"]
        return isinstance(e["code"], str) and e["code"] != "" and isinstance(e["message"], str)
    except (ValueError, KeyError, TypeError):
        return False


def read_response(s, head_request, timeout):
    """The first response on s: (status, content_type, body), or ('closed',
    None, b'') when the socket closed before a whole response head came, or
    ('timeout', None, b'')."""
    s.settimeout(timeout)
    buf = b""
    end = time.time() + timeout
    try:
        while b"\r\n\r\n" not in buf:
            if time.time() > end:
                return ("timeout", None, b"")
            d = s.recv(65536)
            if not d:
                return ("closed", None, b"")
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        length = int(hdrs.get("content-length", "0") or 0)
        if head_request or status in (101, 204, 304):
            length = 0
        while len(body) < length and time.time() < end:
            d = s.recv(65536)
            if not d:
                break
            body += d
        return (status, hdrs.get("content-type"), body[:length])
    except socket.timeout:
        return ("timeout", None, b"")
    except ConnectionError:
        return ("closed", None, b"")


def raw_http_round(port, rnd, tally, bad):
    """120 mutated HTTP requests; each reply's status and body are checked.
    tally counts outcomes; bad collects what was not acceptable."""
    for _ in range(120):
        kind = rnd.random()
        head_req = False
        if kind < 0.3:
            what = "garbage"
            data = rnd.randbytes(rnd.randint(1, 3000))
        elif kind < 0.5:
            what = "bad-url"
            url = rnd.randbytes(rnd.randint(0, 200))
            data = (b"GET /" + url + b" HTTP/1.1\r\nHost: x\r\nX: " + rnd.randbytes(50)
                    + b"\r\n\r\n")
            if all(0x21 <= b < 0x7f for b in url):
                what = "printable-url"  # may well be a valid request
        else:
            what = "mutated"
            headers = "".join(f"H{j}: {'a' * rnd.randint(0, 300)}\r\n"
                              for j in range(rnd.randint(0, 120)))
            method = rnd.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "BREW"])
            head_req = method == "HEAD"
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
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            try:
                s.sendall(data)
                if what == "garbage":
                    # It may be an unfinished request: the end of the input
                    # lets the gateway decide now instead of at its deadline.
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the gateway may answer and stop reading before the end
            status, ctype, rbody = read_response(s, head_req, 3)
        except OSError as e:
            status, ctype, rbody = (f"connect {e!r}", None, b"")
        finally:
            if s:
                s.close()
        tally[f"{what} {status}"] += 1
        if status == "closed" and what == "garbage":
            continue  # an unfinished request, then EOF: nothing to answer
        if status in HTTP_ERRORS:
            if not head_req and not json_error_shape(rbody):
                bad.append(f"{what}: {status} without the JSON error shape: {rbody[:120]!r}")
            elif not head_req and not (ctype or "").startswith("application/json"):
                bad.append(f"{what}: {status} with Content-Type {ctype!r}")
        elif what in ("mutated", "printable-url") and status in HTTP_SUCCESS:
            pass  # a mutation that left a valid request (e.g. GET /healthz)
        else:
            bad.append(f"{what}: unexpected outcome {status!r} for {data[:80]!r}")


TYPES = ["join", "leave", "message", "private", "history", "search", "rooms", "create_room",
         "users", "typing", "broadcast", "ping", "bogus", 7, None]
FIELDS = ["room", "to", "with", "kind", "body", "lang", "since", "before", "after", "limit",
          "q", "user", "topic", "id", "type"]
VALUES = [None, 0, -1, 2 ** 63, -2 ** 63, 1.5, "", "general", "x" * 40, "💥" * 5000, [], {},
          True, "a\u0000b", "data:image/png;base64,AAAA", "Général", "text", "code", "image",
          "../../etc", "{general}", "a:b", "\u202e", "x" * 60000]


def check_reply(f, tally, bad, what):
    """A frame the gateway sent in answer to a mutated request: an error must
    carry a code of the protocol and a message."""
    if f[0] != "text":
        return
    obj = f[1]
    tally[f"{what} {obj.get('type')}"] += 1
    if obj.get("type") == "error" and (obj.get("code") not in ERROR_CODES or
                                       not isinstance(obj.get("message"), str)):
        bad.append(f"{what}: error frame with an invalid code or message: {obj!r}"[:300])


def last_frame(rnd):
    """One frame that may end the connection, and what may answer it: a set
    of close codes, 'error' (an error frame with a valid code), 'pong',
    'none' (nothing: the message is unfinished, or the frame is ignored), or
    'echo' (a close echoing our own code)."""
    r = rnd.random()
    if r < 0.3:
        data = rnd.randbytes(rnd.randint(1, 300))
        try:
            data.decode("utf-8")
            return "text-json?", [(data, 1, True)], {"error"}
        except UnicodeDecodeError:
            return "text-bad-utf8", [(data, 1, True)], {1007}
    if r < 0.4:
        return "too-large", [(b"x" * 70000, 1, True)], {1009}  # over --max-message
    if r < 0.7:
        data = rnd.randbytes(rnd.randint(0, 200))
        op, fin = rnd.choice([0, 2, 3, 8, 9, 10, 15]), rnd.random() < 0.8
        # Errors in the frame header itself (a reserved opcode unfinished,
        # a control frame fragmented or over 125 bytes) make wslay fail the
        # connection: the gateway drops TCP without a close frame ('eof'),
        # which RFC 6455 7.1.7 allows (a close frame there is a SHOULD).
        if op in (3, 15):
            header_error = not fin or (op >= 8 and len(data) > 125)
            return f"reserved-op{op}", [(data, op, fin)], {1002, "eof"} if header_error else {1002}
        if op == 0:
            return "lone-continuation", [(data, op, fin)], {1002}
        if op >= 8 and (not fin or len(data) > 125):
            return f"bad-control-op{op}", [(data, op, fin)], {1002, "eof"}
        if op == 2:
            # binary is refused once the message is whole; unfinished, nothing yet
            return "binary", [(data, op, fin)], {1003} if fin else {"none"}
        if op == 8:
            # a bad code or length is 1002, a reason that is not UTF-8 1007
            return "close", [(data, op, fin)], {"echo", 1002, 1007}
        if op == 9:
            return "ping", [(data, op, fin)], {"pong"}
        return "pong", [(data, op, fin)], {"none"}
    tail = rnd.randbytes(rnd.randint(0, 50))
    op = rnd.choice([0, 1, 9])
    frames = [(b'{"type":"ping"', 1, False), (tail, op, True)]
    if op == 1:
        return "fragment-then-text", frames, {1002}
    if op == 9:
        return "fragment-then-ping", frames, ({"pong"} if len(tail) <= 125 else {1002})
    try:
        (b'{"type":"ping"' + tail).decode("utf-8")
        return "fragmented-text", frames, {"error", "reply"}
    except UnicodeDecodeError:
        return "fragmented-bad-utf8", frames, {1007}


def ws_round(port, token, rnd, tally, bad):
    """50 mutated requests that must not close the connection (checked with a
    ping afterwards; every error reply must have a valid code), then one
    frame that may: random bytes, odd opcodes, broken fragmentation, whose
    answer is checked against what its kind calls for.  Returns True when the
    connection survived phase 1."""
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
            f = w.event(5)
            if f[0] in ("close", "eof", "timeout"):
                bad.append(f"mutated requests ended in {f!r}")
                break
            if f[0] == "text" and f[1].get("type") == "pong" and f[1].get("id") == "alive":
                survived = True
                break
            check_reply(f, tally, bad, "request")
    except (OSError, ValueError) as e:
        bad.append(f"mutated requests: {e!r}")
    what, frames, allowed = last_frame(rnd)
    try:
        for data, op, fin in frames:
            w.send(data, opcode=op, fin=fin)
        sent_code = (struct.unpack(">H", frames[0][0][:2])[0]
                     if what == "close" and len(frames[0][0]) >= 2 else None)
        outcome = None
        end = time.time() + 3
        while time.time() < end:
            f = w.event(max(end - time.time(), 0.01) if "none" not in allowed else 0.5)
            if f[0] == "timeout":
                outcome = "none"
                break
            if f[0] == "text":
                if f[1].get("type") == "error":
                    check_reply(f, tally, bad, what)
                    outcome = "error"
                    break
                if f[1].get("type") == "pong":
                    outcome = "reply"  # the fragments made a valid ping
                    break
                continue  # presence and the like
            if f[0] == "pong":
                outcome = "pong"
                break
            if f[0] == "close":
                code = f[1]
                outcome = "echo" if what == "close" and code == sent_code else code
                if what == "close" and code is None and sent_code is None:
                    outcome = "echo"
                break
            outcome = f[0]  # eof without a close frame, or binary
            break
        tally[f"last {what} -> {outcome}"] += 1
        if outcome not in allowed:
            bad.append(f"last frame {what}: got {outcome!r}, expected one of {sorted(map(str, allowed))}")
    except OSError as e:
        bad.append(f"last frame {what}: {e!r}")
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


def start_gateway(gateway, tmp, redis_port, node, extra):
    """A chat-gateway on a free loopback port, logging to tmp/gw.log, with
    sanitizers set to fail on any report: (process, log path)."""
    log = os.path.join(tmp, "gw.log")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    gw = subprocess.Popen([gateway, "--port", "0", "--bind", "127.0.0.1", "--redis",
                           f"redis://127.0.0.1:{redis_port}/0", "--jwt-secret", SECRET,
                           "--node-id", node] + extra,
                          stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    return gw, log


def finish(failures, gw, redis, log, ok):
    """Stops both by PID, adds an unclean gateway exit to failures, prints
    the outcome; the exit status."""
    code = stop(gw)
    stop(redis)
    if code != 0:
        failures.append(f"gateway exit {code} (see {log})")
    for f in failures:
        print("not ok -", f)
    if failures:
        return 1
    print("ok -", ok)
    return 0


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
    ap.add_argument("--seed", type=int, default=None,
                    help="replay a run (default: $CHAT_HOSTILE_SEED, else random)")
    ap.add_argument("--seeds", type=int, default=5, help="rounds of HTTP + WebSocket input")
    ap.add_argument("--rounds", type=int, default=20, help="WebSocket connections per seed")
    args = ap.parse_args()
    seed = args.seed
    if seed is None and os.environ.get("CHAT_HOSTILE_SEED"):
        seed = int(os.environ["CHAT_HOSTILE_SEED"])
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "big")
    print(f"# seed {seed} (replay with --seed {seed} or CHAT_HOSTILE_SEED={seed})", flush=True)
    signal.signal(signal.SIGALRM, lambda *a: sys.exit(f"hostile: watchdog expired (seed {seed})"))
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
        for i in range(1, args.seeds + 1):
            rnd = random.Random(f"{seed}:{i}")
            tally, bad = Counter(), []
            raw_http_round(port, rnd, tally, bad)
            print(f"# {seed}:{i} HTTP outcomes: {dict(sorted(tally.items()))}")
            check(f"{seed}:{i}: every mutated HTTP request got an expected status and JSON "
                  "error body", not bad, "\n  " + "\n  ".join(bad[:10]))
            token = login(port, f"hostile{i}")["token"]
            survived = 0
            tally, bad = Counter(), []
            for _ in range(args.rounds):
                try:
                    survived += ws_round(port, token, rnd, tally, bad)
                except (OSError, EOFError) as e:
                    bad.append(f"round failed: {e!r}")
            print(f"# {seed}:{i} WebSocket outcomes: {dict(sorted(tally.items()))}")
            check(f"{seed}:{i}: malformed requests never closed the connection",
                  survived == args.rounds, f"({survived} of {args.rounds} survived)")
            check(f"{seed}:{i}: every WebSocket reply was an expected close code or a valid "
                  "error", not bad, "\n  " + "\n  ".join(bad[:10]))
            check(f"{seed}:{i}: gateway alive after hostile HTTP and WebSocket input",
                  gw.poll() is None, f"(exit {gw.returncode})")
            status, body = http(port, "GET", "/healthz")
            check(f"{seed}:{i}: /healthz still 200", status == 200, f"({status} {body[:100]!r})")
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
    print(f"{passed} passed, {failed} failed (seed {seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

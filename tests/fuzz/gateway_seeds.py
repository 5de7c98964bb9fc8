#!/usr/bin/env python3
"""Writes the seeds of fuzz_http and fuzz_ws into tests/fuzz/corpus/.

Each seed is the 4-byte header of gw_harness.h (flags, three chunk sizes)
followed by the client's stream; fuzz_ws's deflate seeds have one more header
byte (the offer and the configuration, fuzz_ws.c).  Run again after changing
the format:
    tests/fuzz/gateway_seeds.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# flags of gw_harness.h
EARLY_EOF = 0x01
TICKS1, TICKS2, TICKS_ALL = 0x02, 0x04, 0x06
DRAIN = 0x08
DRAINING = 0x10
ONE_STREAM = 0x20
SESSION = 0x40
DEFLATE = 0x80

# fuzz_ws's deflate byte: the offer, its window bits, the configuration
CLIENT_NCT = 0x01
CLIENT_BITS = 0x02
SERVER_BITS = 0x04
CONTEXT = 0x40
MIN_0 = 0x80

WHOLE = b"\xff\xff\xff"  # 8 KiB chunks
BYTES = b"\x00\x01\x02"  # 1, 2, 3 bytes
SMALL = b"\x07\x0f\x3f"  # 8, 16, 64 bytes

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def seed(flags=0, chunks=WHOLE):
    return bytes([flags]) + chunks


def req(method, path, headers=(), body=b"", version="1.1"):
    lines = [f"{method} {path} HTTP/{version}"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_post(path, body, extra=()):
    return req("POST", path, ("Host: localhost:8080", "Content-Type: application/json",
                              f"Content-Length: {len(body)}") + tuple(extra), body)


def chunked(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def upgrade(path, extra=(), version="13", method="GET"):
    return req(method, path, ("Host: localhost:8080", "Upgrade: websocket",
                              "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}",
                              f"Sec-WebSocket-Version: {version}") + tuple(extra))


def frame(opcode, payload=b"", fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0, length=None):
    """A client frame; mask=None sends it unmasked; length forces the encoding
    (7, 16 or 64 bits)."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if length is None:
        length = 7 if n < 126 else 16 if n < 65536 else 64
    mbit = 0x80 if mask is not None else 0
    if length == 7:
        head = bytes([b0, mbit | n])
    elif length == 16:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def bits(n):
    """The window bits N of the deflate byte."""
    return (n - 8) << 3


def dseed(dbyte=0, flags=0, chunks=WHOLE):
    return seed(flags | DEFLATE, chunks) + bytes([dbyte])


def deflate(data, wbits=15):
    """One message compressed afresh (RFC 7692 7.2.1): a sync flush, its
    00 00 ff ff dropped.  zlib makes no raw stream with a 2^8 window."""
    c = zlib.compressobj(6, zlib.DEFLATED, -max(wbits, 9))
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_stream(*messages, wbits=15):
    """Messages compressed with one stream that keeps its window (context
    takeover): later ones refer back into the earlier ones."""
    c = zlib.compressobj(6, zlib.DEFLATED, -max(wbits, 9))
    out = []
    for m in messages:
        z = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        out.append(z[:-4])
    return out


def deflate_final(data, zdict=None):
    """A message flushed with a final block (BFINAL, RFC 7692 7.2.3.4), plus
    the empty stored block header that lets 00 00 ff ff follow; zdict makes
    it refer back into the text before (a sender that keeps its window)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=zdict) if zdict else \
        zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH) + b"\x00"


def ztext(data, **kw):
    """A compressed text frame (RSV1) whose payload is data, already compressed."""
    return frame(1, data, rsv=0x40, **kw)


def text(s, **kw):
    return frame(1, s.encode() if isinstance(s, str) else s, **kw)


def close(code=None, reason=b"", **kw):
    payload = b"" if code is None else struct.pack(">H", code) + reason
    return frame(8, payload, **kw)


HOST = "Host: localhost:8080"

HTTP = {
    "get-root": seed() + req("GET", "/", (HOST,)),
    "get-root-bytewise": seed(0, BYTES) + req("GET", "/", (HOST,)),
    "get-index-http10": seed() + req("GET", "/index.html", (), version="1.0"),
    "get-http10-keepalive": seed() + req("GET", "/app.js", ("Connection: keep-alive",),
                                         version="1.0") + req("GET", "/style.css", (), version="1.0"),
    "head-app-js": seed() + req("HEAD", "/app.js", (HOST,)),
    "get-if-none-match": seed() + req("GET", "/style.css", (HOST, "If-None-Match: *")),
    "get-sub-dir": seed() + req("GET", "/sub/", (HOST,)) + req("GET", "/sub/a%20b.txt", (HOST,)),
    "get-empty-file": seed() + req("GET", "/empty.json?x=1", (HOST,)),
    "get-missing": seed() + req("GET", "/nope.png", (HOST,)),
    "traversal-dotdot": seed() + req("GET", "/../outside.txt", (HOST,)),
    "traversal-encoded": seed() + req("GET", "/%2e%2e/outside.txt", (HOST,))
    + req("GET", "/sub/..%2foutside.txt", (HOST,)) + req("GET", "/sub/%2E%2E%2Foutside.txt", (HOST,)),
    "traversal-hidden": seed() + req("GET", "/.hidden", (HOST,)) + req("GET", "/%00", (HOST,))
    + req("GET", "/a%5c..%5coutside.txt", (HOST,)),
    "post-static": seed() + req("POST", "/index.html", (HOST, "Content-Length: 3"), b"abc"),
    "healthz": seed() + req("GET", "/healthz", (HOST,)),
    "healthz-draining": seed(DRAINING) + req("GET", "/healthz", (HOST,)),
    "metrics": seed() + req("GET", "/metrics", (HOST,)),
    "login": seed() + json_post("/api/login", b'{"nickname":"alice","avatar":null}'),
    "login-avatar": seed(0, SMALL) + json_post(
        "/api/login", b'{"nickname":"b\\u00f6b","avatar":"https://example.com/a.png"}'),
    "login-bad-json": seed() + json_post("/api/login", b'{"nickname":'),
    "login-bad-nick": seed() + json_post("/api/login", b'{"nickname":" x"}')
    + json_post("/api/login", b'{"nickname":"a\\u0000b"}') + json_post("/api/login", b'[]'),
    "login-get": seed() + req("GET", "/api/login", (HOST,)),
    "login-chunked": seed(0, SMALL) + req("POST", "/api/login", (
        HOST, "Content-Type: application/json", "Transfer-Encoding: chunked"))
    + chunked(b'{"nicknam', b'e":"carol"}      '),
    "login-chunked-ext": seed() + req("POST", "/api/login", (HOST, "Transfer-Encoding: chunked"))
    + b"5;ext=1\r\n{\"nic\r\n0\r\nTrailer: x\r\n\r\n",
    "me-bearer": seed() + req("GET", "/api/me", (HOST, "Authorization: Bearer @TOKEN@")),
    "me-query": seed() + req("GET", "/api/me?a=b&token=@TOKEN@", (HOST,)),
    "me-bad-token": seed() + req("GET", "/api/me?token=abc.def.ghi", (HOST,))
    + req("GET", "/api/me", (HOST, "Authorization: Bearer ")),
    "rooms": seed() + req("GET", "/api/rooms", (HOST,)),
    "api-unknown": seed() + req("GET", "/api/nothing", (HOST,)),
    "ws-token": seed() + upgrade("/ws?token=@TOKEN@"),
    "ws-bearer": seed() + upgrade("/ws", ("Authorization: Bearer @TOKEN@",)),
    "ws-no-token": seed() + upgrade("/ws"),
    "ws-bad-version": seed() + upgrade("/ws?token=@TOKEN@", version="8"),
    "ws-post": seed() + upgrade("/ws", method="POST"),
    "ws-no-key": seed() + req("GET", "/ws", (HOST, "Upgrade: websocket", "Connection: Upgrade",
                                             "Sec-WebSocket-Version: 13")),
    "ws-http10": seed() + req("GET", "/echo", ("Upgrade: websocket", "Connection: Upgrade",
                                               f"Sec-WebSocket-Key: {KEY}",
                                               "Sec-WebSocket-Version: 13"), version="1.0"),
    "echo-frames": seed() + upgrade("/echo") + text("hello") + frame(9, b"p") + close(1000),
    "echo-origin-ok": seed() + upgrade("/echo", ("Origin: http://localhost:8080",)) + text("hi"),
    "echo-origin-bad": seed() + upgrade("/echo", ("Origin: http://evil.example",)),
    "echo-connection-list": seed(0, SMALL) + req("GET", "/echo", (
        HOST, "Upgrade: WebSocket", "Connection: keep-alive, Upgrade", f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13")) + text("x" * 200),
    "echo-drain": seed(DRAIN) + upgrade("/echo") + text("bye"),
    "echo-ticks": seed(TICKS_ALL) + upgrade("/echo"),
    "pipelined": seed() + req("GET", "/", (HOST,)) + req("GET", "/healthz", (HOST,))
    + req("HEAD", "/app.js", (HOST,)) + req("GET", "/api/rooms", (HOST,)),
    "pipelined-close": seed(0, SMALL) + req("GET", "/", (HOST,))
    + req("GET", "/app.js", (HOST, "Connection: close")) + req("GET", "/style.css", (HOST,)),
    "pipelined-then-upgrade": seed() + req("GET", "/healthz", (HOST,)) + upgrade("/echo")
    + text("after"),
    "header-too-large": seed() + b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000
    + b"\r\n\r\n",
    "url-too-large": seed() + b"GET /" + b"b" * 16500 + b" HTTP/1.1\r\n\r\n",
    "too-many-headers": seed() + b"GET / HTTP/1.1\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n",
    "body-too-large": seed() + req("POST", "/api/login", (HOST, "Content-Length: 70000")),
    "bad-version": seed() + b"GET / HTTP/2.0\r\n\r\n",
    "bad-method": seed() + b"BREW / HTTP/1.1\r\n\r\n",
    "garbage": seed() + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "lf-only": seed() + b"GET /healthz HTTP/1.1\nHost: x\n\n",
    "empty-header-value": seed() + b"GET / HTTP/1.1\r\nHost:\r\nX-A:\r\n\r\n",
    "folded-header": seed() + b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\nHost: x\r\n\r\n",
    "dup-content-length": seed() + b"POST /api/login HTTP/1.1\r\nContent-Length: 2\r\n"
    b"Content-Length: 3\r\n\r\n{}x",
    "cl-and-chunked": seed() + b"POST /api/login HTTP/1.1\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "incomplete-timeout": seed(TICKS1, BYTES) + b"GET / HTTP/1.1\r\nHost: x\r\n",
    "incomplete-eof": seed(EARLY_EOF) + b"GET / HTTP/1.1\r\nHost: x\r\n",
    "early-eof": seed(EARLY_EOF) + req("GET", "/", (HOST,)) + req("GET", "/", (HOST,)),
    "drain-idle": seed(DRAIN) + req("GET", "/healthz", (HOST,)),
    "absolute-uri": seed() + req("GET", "http://localhost:8080/healthz", (HOST,)),
    "options-star": seed() + req("OPTIONS", "*", (HOST,)),
}

WS = {
    "text": seed() + text("hello"),
    "text-bytewise": seed(0, BYTES) + text("hello") + text("world"),
    "binary": seed() + frame(2, bytes(range(256))),
    "empty-text": seed() + text(""),
    "ping-pong": seed() + frame(9, b"ping!") + frame(10, b"pong?") + text("after"),
    "close-normal": seed() + text("a") + close(1000, b"bye"),
    "close-empty": seed() + close(),
    "close-1005": seed() + close(1005),
    "close-bad-code": seed() + close(999) + text("never"),
    "close-one-byte": seed() + frame(8, b"\x03"),
    "close-bad-utf8-reason": seed() + close(1000, b"\xff\xfe"),
    "close-4000": seed() + close(4000, "ok \u00e9".encode()),
    "fragmented": seed() + text("hel", fin=False) + frame(9, b"") + frame(0, b"lo", fin=False)
    + frame(0, b"!"),
    "fragmented-utf8-split": seed() + text(b"\xc3", fin=False) + frame(0, b"\xa9"),
    "fragmented-binary": seed(0, SMALL) + frame(2, b"\x00" * 100, fin=False)
    + frame(0, b"\x01" * 100),
    "invalid-utf8": seed() + text(b"ok") + text(b"\xc3\x28") + text(b"never"),
    "utf8-surrogate": seed() + text(b"\xed\xa0\x80"),
    "utf8-overlong": seed() + text(b"\xc0\xaf"),
    "unmasked": seed() + text("no mask", mask=None),
    "rsv1": seed() + text("compressed?", rsv=0x40),
    "reserved-opcode": seed() + frame(3, b"x") + text("never"),
    "reserved-control": seed() + frame(11, b"x"),
    "control-too-long": seed() + frame(9, b"p" * 126),
    "control-fragmented": seed() + frame(9, b"p", fin=False),
    "continuation-alone": seed() + frame(0, b"orphan"),
    "text-in-fragment": seed() + text("a", fin=False) + text("b"),
    "too-large": seed(0, SMALL) + text("x" * 5000),
    "too-large-fragments": seed() + text("x" * 3000, fin=False) + frame(0, b"y" * 3000),
    "len16-nonminimal": seed() + text("short", length=16),
    "len64": seed() + text("x" * 70, length=64),
    "len64-huge": seed() + bytes([0x81, 0xff]) + b"\x7f" + b"\xff" * 7 + b"\x00\x00\x00\x00",
    "many-small": seed(0, SMALL) + b"".join(text(str(i)) for i in range(60)),
    "many-pings": seed() + b"".join(frame(9, bytes([i])) for i in range(40)),
    "garbage": seed() + b"\x00\xff\x13\x37" * 8,
    "one-stream": seed(ONE_STREAM) + text("together") + close(1000),
    "one-stream-bytewise": seed(ONE_STREAM, BYTES) + text("together"),
    "one-stream-error": seed(ONE_STREAM) + text("x", mask=None),
    "early-eof": seed(EARLY_EOF) + text("then FIN"),
    "ticks-ping": seed(TICKS2) + text("a"),
    "ticks-idle": seed(TICKS_ALL) + text("a"),
    "drain": seed(DRAIN) + text("a"),
    "half-frame": seed() + text("complete") + bytes([0x81, 0x85, 1, 2]),
    # a zero mask leaves the payload readable, so mutations of it stay text
    "zero-mask-text": seed() + text("hello", mask=b"\0\0\0\0") + text("\u00e9t\u00e9", mask=b"\0\0\0\0"),
    "zero-mask-close": seed() + text("x", mask=b"\0\0\0\0") + close(1001, b"away", mask=b"\0\0\0\0"),
    "zero-mask-fragments": seed(0, SMALL) + text("ab", fin=False, mask=b"\0\0\0\0")
    + frame(9, b"mid", mask=b"\0\0\0\0") + frame(0, b"cd", mask=b"\0\0\0\0"),
    "session-request": seed(SESSION) + text('{"type":"ping","id":"1"}'),
    "session-join": seed(SESSION, SMALL) + text('{"type":"join","room":"general"}')
    + text('{"type":"message","room":"general","content":{"kind":"text","body":"hi"}}'),
    "session-binary": seed(SESSION) + frame(2, b"\x00"),
    "session-close": seed(SESSION) + close(1000),
    "session-one-stream": seed(SESSION | ONE_STREAM) + text('{"type":"rooms"}'),
    "session-ticks": seed(SESSION | TICKS_ALL),
}

ZERO = b"\0\0\0\0"
HELLO = b"hello hello hello hello, compressed chat " * 4
CTX = deflate_stream(b"the first message sets up the window: " + HELLO,
                     b"the second refers back: " + HELLO, b"third " + HELLO)
CTX10 = deflate_stream(HELLO, b"again " + HELLO, wbits=10)
CTX8 = deflate_stream(HELLO, b"again " + HELLO, wbits=8)
# 1500 bytes without repeats, then their first 300 again: a back reference
# 1500 bytes back, past a window of 2^9
NOISE = b"".join(b"%04x" % ((i * 40503) & 0xffff) for i in range(375))
FAR = deflate_stream(NOISE, NOISE[:300])
BOMB = deflate(b"\0" * (1 << 20))
FRAG = deflate(HELLO + b"in three frames")

WS.update({
    "deflate-text": dseed() + ztext(deflate(HELLO)) + text("plain too") + close(1000),
    "deflate-text-min0": dseed(MIN_0) + ztext(deflate(b"short")) + text("hi") + text(HELLO),
    "deflate-zero-mask": dseed(MIN_0, chunks=SMALL) + ztext(deflate(HELLO), mask=ZERO)
    + ztext(deflate("\u00e9t\u00e9 ".encode() * 40), mask=ZERO),
    "deflate-binary": dseed(MIN_0) + frame(2, deflate(bytes(range(256)) * 4), rsv=0x40),
    "deflate-empty": dseed(MIN_0) + ztext(deflate(b"")) + ztext(b"\x00") + ztext(b""),
    "deflate-cnct": dseed(CLIENT_NCT | CONTEXT) + ztext(deflate(HELLO)) + ztext(deflate(HELLO)),
    "deflate-client-bits": dseed(CLIENT_BITS | bits(11)) + ztext(deflate(HELLO, 11)),
    "deflate-client-bits-bare": dseed(CLIENT_BITS | bits(15) | CONTEXT) + ztext(CTX[0]) + ztext(CTX[1]),
    "deflate-server-bits9": dseed(SERVER_BITS | bits(9) | MIN_0) + ztext(deflate(HELLO * 8)),
    "deflate-server-bits8": dseed(SERVER_BITS | bits(8) | MIN_0, chunks=SMALL) + text(HELLO * 8),
    "deflate-all-params": dseed(CLIENT_NCT | CLIENT_BITS | SERVER_BITS | bits(12) | MIN_0)
    + ztext(deflate(HELLO)) + text(HELLO),
    "deflate-context": dseed(CONTEXT) + ztext(CTX[0]) + ztext(CTX[1]) + text("plain between")
    + ztext(CTX[2]) + close(1000),
    "deflate-context-off": dseed() + ztext(CTX[0]) + ztext(CTX[1]) + ztext(CTX[2]),
    "deflate-context-bits10": dseed(CONTEXT | CLIENT_BITS | bits(10)) + ztext(CTX10[0])
    + ztext(CTX10[1]),
    "deflate-context-bits8": dseed(CONTEXT | CLIENT_BITS | bits(8), chunks=SMALL)
    + ztext(CTX8[0]) + ztext(CTX8[1]),
    "deflate-context-too-far": dseed(CONTEXT | CLIENT_BITS | bits(9)) + ztext(FAR[0])
    + ztext(FAR[1]),
    "deflate-context-far": dseed(CONTEXT) + ztext(FAR[0]) + ztext(FAR[1]),
    "deflate-fragmented": dseed(MIN_0, chunks=SMALL) + ztext(FRAG[:10], fin=False)
    + frame(9, b"mid") + frame(0, FRAG[10:20], fin=False) + frame(0, FRAG[20:]),
    "deflate-fragmented-context": dseed(CONTEXT) + ztext(CTX[0][:7], fin=False)
    + frame(0, CTX[0][7:]) + ztext(CTX[1]),
    "deflate-bfinal": dseed() + ztext(deflate_final(HELLO)) + ztext(deflate(HELLO)),
    "deflate-context-bfinal": dseed(CONTEXT) + ztext(deflate_final(HELLO))
    + ztext(deflate_final(b"after a final block: " + HELLO, zdict=HELLO)),
    "deflate-zip-bomb": dseed() + ztext(BOMB) + text("never"),
    "deflate-zip-bomb-context": dseed(CONTEXT) + ztext(CTX[0]) + frame(2, BOMB, rsv=0x40),
    "deflate-exactly-max": dseed() + ztext(deflate(b"m" * 4096)) + ztext(deflate(b"m" * 4097)),
    "deflate-bad-data": dseed() + ztext(deflate(HELLO)) + ztext(b"\xff\xfe\xfd not deflate"),
    "deflate-invalid-utf8": dseed() + ztext(deflate(b"ok \xc3\x28 " * 30)) + text("never"),
    "deflate-rsv1-ping": dseed() + ztext(deflate(HELLO)) + frame(9, b"p", rsv=0x40),
    "deflate-rsv1-close": dseed() + frame(8, struct.pack(">H", 1000), rsv=0x40),
    "deflate-rsv1-continuation": dseed() + text("plain ", fin=False) + frame(0, b"x", rsv=0x40),
    "deflate-rsv2": dseed() + text("rsv2", rsv=0x20),
    "deflate-too-large-wire": dseed() + ztext(bytes(range(256)) * 17),
    "deflate-one-stream": dseed(MIN_0, ONE_STREAM, BYTES) + ztext(deflate(HELLO)) + close(1000),
    "deflate-early-eof": dseed(CONTEXT, EARLY_EOF) + ztext(CTX[0]) + ztext(CTX[1]),
    "deflate-ticks": dseed(MIN_0, TICKS_ALL) + ztext(deflate(HELLO)),
    "deflate-drain": dseed(MIN_0, DRAIN) + ztext(deflate(HELLO)),
    "deflate-session": dseed(MIN_0, SESSION) + ztext(deflate(b'{"type":"ping","id":"1"}')),
    "deflate-session-context": dseed(CONTEXT | MIN_0, SESSION) + ztext(CTX[0]) + ztext(CTX[1]),
})


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("fuzz_http", HTTP)
    write("fuzz_ws", WS)
    print(f"fuzz_http: {len(HTTP)} seeds, fuzz_ws: {len(WS)} seeds")

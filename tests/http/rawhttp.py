#!/usr/bin/env python3
"""rawhttp.py — HTTP checks that need exact control of the bytes on the wire
(pipelining, limits, slow clients, malformed requests, hand-made tokens).
Prints "PASS name" or "FAIL name: detail" per check. Standard library only.

  rawhttp.py PORT wire                  framing, limits, pipelining, errors
  rawhttp.py PORT slow HEADER_TIMEOUT   a slowloris client is answered 408 and closed
  rawhttp.py PORT token SECRET USER     tokens made here with the server's secret
"""
import base64, hashlib, hmac, json, socket, sys, time


def check(name, cond, detail=""):
    print(("PASS " + name) if cond else ("FAIL %s: %s" % (name, detail)), flush=True)


def conn(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_all(s, timeout=3):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    return out


def read_responses(s, n, timeout=3):
    """Reads n responses (Content-Length framed); returns [(status, headers, body)]."""
    s.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return out
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        st = int(lines[0].split()[1])
        hd = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n_body = int(hd.get("content-length", "0"))
        while len(rest) < n_body:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        out.append((st, hd, rest[:n_body]))
        buf = rest[n_body:]
    return out


def one(port, raw, timeout=3):
    s = conn(port)
    s.sendall(raw)
    r = read_responses(s, 1, timeout)
    closed = read_all(s, 1) == b""
    s.close()
    return (r[0] if r else (0, {}, b"")), closed


def wire(port):
    # pipelining: three requests in one write, three answers in order
    s = conn(port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
              b"GET /nope.txt HTTP/1.1\r\nHost: a\r\n\r\n"
              b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n")
    r = read_responses(s, 3)
    check("pipelined requests answered in order",
          [x[0] for x in r] == [200, 404, 200] and b"status" in r[0][2], [x[0] for x in r])
    # the same connection serves another request (keep-alive)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    r = read_responses(s, 1)
    check("keep-alive: the connection serves a fourth request", r and r[0][0] == 200)
    s.close()

    # a pipelined burst split at every byte still works
    s = conn(port)
    req = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * 2
    for i in range(len(req)):
        s.sendall(req[i:i + 1])
    r = read_responses(s, 2)
    check("requests arriving byte by byte", [x[0] for x in r] == [200, 200], r)
    s.close()

    # a POST body split across writes, with Expect: 100-continue
    s = conn(port)
    body = b'{"user":"nobody","password":"x"}'
    s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    s.settimeout(3)
    first = s.recv(100)
    check("Expect: 100-continue gets 100 Continue", first.startswith(b"HTTP/1.1 100 Continue"),
          first)
    s.sendall(body[:10])
    time.sleep(0.2)
    s.sendall(body[10:])
    r = read_responses(s, 1)
    check("body in two writes is read whole (login → 401)", r and r[0][0] == 401, r)
    s.close()

    (st, hd, b), closed = one(port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    check("head above http.max_header_size → 431 JSON, closed",
          st == 431 and json.loads(b).get("error") and closed, (st, b))
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    (st, hd, b), closed = one(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + hdrs + b"\r\n")
    check("more than http.max_headers fields → 431", st == 431, (st, b))
    (st, hd, b), closed = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\n"
                                    b"Content-Length: 5000000\r\n\r\n")
    check("body above http.max_body_size → 413 JSON, closed",
          st == 413 and b"limit" in b and closed, (st, b))
    body = b'{"user":"nobody","password":"x"}'
    (st, hd, b), _ = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n"
                               + b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n"
                               % (10, body[:10], len(body) - 10, body[10:]))
    check("chunked request body decoded (login → 401, not 400)", st == 401, (st, b))
    (st, hd, b), _ = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
    check("bad chunk size → 400", st == 400 and b"chunk" in b, (st, b))
    (st, hd, b), _ = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\n"
                               b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    check("Transfer-Encoding other than chunked → 501", st == 501, (st, b))
    (st, hd, b), closed = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n100000\r\n")
    check("chunk above http.max_body_size → 413, closed", st == 413 and closed, (st, b))
    (st, hd, b), _ = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\nabc")
    check("Content-Length with Transfer-Encoding → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                               b"Content-Length: 4\r\n\r\nabcd")
    check("two different Content-Lengths → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"GET / HTTP/1.1\r\n\r\n")
    check("HTTP/1.1 without Host → 400", st == 400 and b"Host" in b, (st, b))
    (st, hd, b), _ = one(port, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")
    check("HTTP/2.0 request line → 505", st == 505, (st, b))
    (st, hd, b), _ = one(port, b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n")
    check("malformed request line → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
    check("space before a header colon → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n")
    check("obsolete line folding → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n")
    check("unknown method → 501", st == 501, (st, b))
    (st, hd, b), closed = one(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    check("HTTP/1.0 without keep-alive: answered and closed", st == 200 and closed, (st, closed))
    (st, hd, b), closed = one(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    check("Connection: close is honoured", st == 200 and closed and
          hd.get("connection") == "close", (st, hd))
    (st, hd, b), _ = one(port, b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n")
    check("bad %-escape in the path → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n")
    check("encoded NUL in the path → 400", st == 400, (st, b))
    (st, hd, b), _ = one(port, b"GET /sip HTTP/1.1\r\nHost: a\r\n\r\n")
    check("plain GET on the WebSocket endpoint → 426", st == 426 and
          hd.get("upgrade") == "websocket", (st, hd))
    (st, hd, b), _ = one(port, b"GET /sip HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
    check("WebSocket version 8 → 426 with Sec-WebSocket-Version: 13",
          st == 426 and hd.get("sec-websocket-version") == "13", (st, hd))


def slow(port, timeout):
    # slowloris: a header line every 0.5 s never finishes the head
    s = conn(port)
    t0 = time.time()
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
    got = b""
    s.settimeout(0.5)
    try:
        for i in range(int(timeout * 4) + 8):
            try:
                s.sendall(b"X-Slow-%d: y\r\n" % i)
            except OSError:
                break
            try:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            except socket.timeout:
                pass
    except OSError:
        pass
    took = time.time() - t0
    check("slowloris head → 408 within http.header_timeout",
          got.startswith(b"HTTP/1.1 408") and took < timeout + 2.5, (got[:60], round(took, 1)))
    # a body that never comes
    s = conn(port)
    t0 = time.time()
    s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab")
    r = read_all(s, timeout * 3 + 5)
    check("missing body → 408 and closed", r.startswith(b"HTTP/1.1 408"), r[:60])
    # an idle connection that never sends anything is closed
    s = conn(port)
    t0 = time.time()
    r = read_all(s, timeout * 3 + 5)
    check("silent connection closed after the head timeout",
          time.time() - t0 < timeout + 2.5, round(time.time() - t0, 1))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(port, secret, user, ha1):
    key = hmac.new(secret.encode(), b"rtcd http token key v1", hashlib.sha256).digest()

    def make(payload):
        mac = hmac.new(key, payload.encode() + b"\n" + ha1.encode(), hashlib.sha256).digest()
        return b64u(payload.encode()) + "." + b64u(mac)

    def get(tok):
        (st, hd, b), _ = one(port, b"GET /api/v1/contacts HTTP/1.1\r\nHost: a\r\n"
                                   b"Authorization: Bearer " + tok.encode() + b"\r\n\r\n")
        return st, b

    st, b = get(make("1:%s:%d" % (user, time.time() + 600)))
    check("a token made with the server's secret is accepted", st == 200, (st, b))
    st, b = get(make("1:%s:%d" % (user, time.time() - 10)))
    check("an expired token → 401 'expired'", st == 401 and b"expired" in b, (st, b))
    t = make("1:%s:%d" % (user, time.time() + 600))
    forged = t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1]
    st, b = get(forged)
    check("a token with a changed signature → 401", st == 401, (st, b))
    other = make("1:%s:%d" % ("bob", time.time() + 600))  # bob's name, alice's HA1
    st, b = get(other)
    check("a token signed with another user's password → 401", st == 401, (st, b))
    st, b = get("garbage")
    check("a malformed token → 401", st == 401, (st, b))


def main():
    port = int(sys.argv[1])
    if sys.argv[2] == "wire":
        wire(port)
    elif sys.argv[2] == "slow":
        slow(port, float(sys.argv[3]))
    elif sys.argv[2] == "token":
        token(port, sys.argv[3], sys.argv[4], sys.argv[5])


if __name__ == "__main__":
    main()

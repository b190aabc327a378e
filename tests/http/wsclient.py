#!/usr/bin/env python3
"""wsclient.py — a small WebSocket client (RFC 6455) and SIP-over-WebSocket user
agent (RFC 7118) for rtcd's wire tests. Standard library only; loopback only.

As a library: WS(host, port, path, protocols) connects and upgrades; send(opcode,
payload, fin=True), recv() → (opcode, payload) with fragments reassembled and
control frames returned as they come; close(code).

As a program it runs the SIP-over-WebSocket checks and prints one line per
check, "PASS name" or "FAIL name: detail":
  wsclient.py sip --http PORT --sip PORT   (users alice/bob with password 'pw')
"""
import argparse, base64, hashlib, os, random, re, socket, ssl, struct, sys, time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WSError(Exception):
    pass


class WS:
    tls = False  # wss: TLS without certificate checks (the server's is self-signed in tests)

    def __init__(self, host, port, path="/sip", protocols=("sip",), headers=None, timeout=5):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if WS.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        if protocols:
            req += "Sec-WebSocket-Protocol: " + ", ".join(protocols) + "\r\n"
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise WSError("closed during handshake: %r" % self.buf[:200])
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode(errors="replace")
        self.status = int(self.head.split(" ", 2)[1])
        if self.status != 101:
            m = re.search(r"Content-Length: (\d+)", self.head, re.I)
            n = int(m.group(1)) if m else 0
            while len(self.buf) < n:
                d = self.sock.recv(65536)
                if not d:
                    break
                self.buf += d
            self.body = self.buf[:n].decode(errors="replace")
            raise WSError(f"upgrade refused: {self.status} {self.body}")
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if f"sec-websocket-accept: {want.lower()}" not in self.head.lower():
            raise WSError("bad Sec-WebSocket-Accept")
        m = re.search(r"^Sec-WebSocket-Protocol: *(.*)$", self.head, re.I | re.M)
        self.protocol = m.group(1).strip() if m else None

    def send(self, opcode, payload=b"", fin=True, mask=True, length_override=None):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload) if length_override is None else length_override
        if n < 126:
            hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            k = os.urandom(4)
            hdr += k
            payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise WSError("connection closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        if b1 & 0x80:
            raise WSError("server frames must not be masked")
        return bool(b0 & 0x80), b0 & 0x0F, self._need(n)

    auto_pong = True  # answer pings as browsers do (off to see the pings)

    def recv(self, timeout=5):
        """The next message: (opcode, payload); control frames are returned too
        (pings only when auto_pong is off: else they are answered here)."""
        self.sock.settimeout(timeout)
        fin, op, data = self.frame()
        while op == 9 and self.auto_pong:
            self.send(10, data)
            fin, op, data = self.frame()
        if op >= 8:
            return op, data
        while not fin:
            fin, op2, more = self.frame()
            if op2 >= 8:
                continue
            data += more
        return op, data

    def close(self, code=1000):
        try:
            self.send(8, struct.pack("!H", code))
        except OSError:
            pass
        self.sock.close()


# ---- SIP over WebSocket ----

def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def tok():
    return "%x" % random.getrandbits(48)


def digest(method, uri, user, pw, chal, realm_default="localhost"):
    realm = re.search(r'realm="([^"]*)"', chal).group(1)
    nonce = re.search(r'nonce="([^"]*)"', chal).group(1)
    cnonce = tok()
    ha1 = md5(f"{user}:{realm}:{pw}")
    ha2 = md5(f"{method}:{uri}")
    resp = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"')


def status_of(msg):
    m = re.match(r"SIP/2.0 (\d+)", msg)
    return int(m.group(1)) if m else 0


def header(msg, name):
    m = re.search(r"^" + name + r":\s*(.*?)\r$", msg, re.I | re.M)
    return m.group(1) if m else None


class WSUA:
    """A SIP UA on a WebSocket, as JsSIP does it: Via WS with a .invalid host,
    Contact sip:user@x.invalid;transport=ws with +sip.instance and reg-id."""

    def __init__(self, ws, user, pw):
        self.ws, self.user, self.pw = ws, user, pw
        self.host = tok() + ".invalid"
        self.tag = tok()
        self.instance = "<urn:uuid:%s>" % "00000000-0000-4000-8000-%012x" % random.getrandbits(48)
        self.inbox = []

    def build(self, method, ruri, to, cid, cseq, extra="", body=""):
        return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/WSS {self.host};branch=z9hG4bK{tok()}\r\n"
                f"Max-Forwards: 69\r\nTo: {to}\r\nFrom: <sip:{self.user}@localhost>;tag={self.tag}\r\n"
                f"Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}"
                + ("Content-Type: text/plain\r\n" if body else "")
                + f"Content-Length: {len(body.encode())}\r\n\r\n{body}")

    def next_sip(self, timeout=5):
        end = time.time() + timeout
        while time.time() < end:
            op, data = self.ws.recv(max(0.1, end - time.time()))
            if op in (1, 2):
                return data.decode(errors="replace")
            if op == 8:
                raise WSError("closed by server")
        raise socket.timeout()

    def transact(self, method, ruri, to, extra="", body="", auth_hdr=None):
        cid, cseq = tok() + "@ws", 1
        auth = ""
        for _ in range(2):
            self.ws.send(1, self.build(method, ruri, to, cid, cseq, extra + auth, body))
            while True:
                msg = self.next_sip()
                if msg.startswith("SIP/2.0"):
                    st = status_of(msg)
                    if st >= 200:
                        break
                else:
                    self.inbox.append(msg)
            if st in (401, 407):
                chal = header(msg, "WWW-Authenticate" if st == 401 else "Proxy-Authenticate")
                name = "Authorization" if st == 401 else "Proxy-Authorization"
                auth = f"{name}: {digest(method, ruri, self.user, self.pw, chal)}\r\n"
                cseq += 1
                continue
            return st, msg
        return st, msg

    def register(self, expires=300):
        ct = (f"<sip:{self.user}@{self.host};transport=ws>;+sip.instance=\"{self.instance}\";"
              f"reg-id=1;expires={expires}")
        return self.transact("REGISTER", "sip:localhost", f"<sip:{self.user}@localhost>",
                             f"Contact: {ct}\r\nSupported: outbound, path\r\n")

    def answer(self, req, status=200):
        vias = "".join(f"Via: {v}\r\n" for v in re.findall(r"^Via:\s*(.*?)\r$", req, re.M | re.I))
        rr = "".join(f"Record-Route: {v}\r\n"
                     for v in re.findall(r"^Record-Route:\s*(.*?)\r$", req, re.M | re.I))
        to = header(req, "To")
        if ";tag=" not in to:
            to += ";tag=" + tok()
        resp = (f"SIP/2.0 {status} OK\r\n{vias}{rr}To: {to}\r\nFrom: {header(req, 'From')}\r\n"
                f"Call-ID: {header(req, 'Call-ID')}\r\nCSeq: {header(req, 'CSeq')}\r\n"
                f"Content-Length: 0\r\n\r\n")
        self.ws.send(1, resp)


class UDPUA:
    def __init__(self, server, user, pw):
        self.server, self.user, self.pw = server, user, pw
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tag = tok()

    def build(self, method, ruri, to, cid, cseq, extra="", body=""):
        return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};"
                f"branch=z9hG4bK{tok()};rport\r\nMax-Forwards: 70\r\nTo: {to}\r\n"
                f"From: <sip:{self.user}@localhost>;tag={self.tag}\r\nCall-ID: {cid}\r\n"
                f"CSeq: {cseq} {method}\r\n{extra}"
                + ("Content-Type: text/plain\r\n" if body else "")
                + f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()

    def recv(self, timeout=5):
        self.sock.settimeout(timeout)
        d, a = self.sock.recvfrom(65535)
        return d.decode(errors="replace")

    def transact(self, method, ruri, to, extra="", body=""):
        cid, cseq, auth = tok() + "@udp", 1, ""
        for _ in range(2):
            self.sock.sendto(self.build(method, ruri, to, cid, cseq, extra + auth, body), self.server)
            while True:
                msg = self.recv()
                if msg.startswith("SIP/2.0") and status_of(msg) >= 200:
                    break
            st = status_of(msg)
            if st in (401, 407):
                chal = header(msg, "WWW-Authenticate" if st == 401 else "Proxy-Authenticate")
                name = "Authorization" if st == 401 else "Proxy-Authorization"
                auth = f"{name}: {digest(method, ruri, self.user, self.pw, chal)}\r\n"
                cseq += 1
                continue
            return st, msg
        return st, msg

    def answer(self, req, status=200):
        vias = "".join(f"Via: {v}\r\n" for v in re.findall(r"^Via:\s*(.*?)\r$", req, re.M | re.I))
        to = header(req, "To") + ";tag=" + tok()
        resp = (f"SIP/2.0 {status} OK\r\n{vias}To: {to}\r\nFrom: {header(req, 'From')}\r\n"
                f"Call-ID: {header(req, 'Call-ID')}\r\nCSeq: {header(req, 'CSeq')}\r\n"
                f"Content-Length: 0\r\n\r\n")
        self.sock.sendto(resp.encode(), self.server)


def check(name, cond, detail=""):
    print(("PASS " + name) if cond else ("FAIL %s: %s" % (name, detail)), flush=True)
    return cond


def invite_dialog(alice, bob):
    import threading
    box = {}

    def callee():
        try:
            while True:
                m = bob.recv(5)
                if m.startswith("INVITE"):
                    break
            box["invite"] = m
            rr = re.findall(r"^Record-Route:\s*(.*?)\r$", m, re.M | re.I)
            box["rr"] = ", ".join(rr)
            vias = "".join(f"Via: {v}\r\n" for v in re.findall(r"^Via:\s*(.*?)\r$", m, re.M))
            box["btag"] = tok()
            ok = (f"SIP/2.0 200 OK\r\n{vias}"
                  + "".join(f"Record-Route: {r}\r\n" for r in rr)
                  + f"From: {header(m, 'From')}\r\nTo: {header(m, 'To')};tag={box['btag']}\r\n"
                  f"Call-ID: {header(m, 'Call-ID')}\r\nCSeq: {header(m, 'CSeq')}\r\n"
                  f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\nContent-Length: 0\r\n\r\n")
            bob.sock.sendto(ok.encode(), bob.server)
            while True:
                m = bob.recv(5)
                if m.startswith("ACK"):
                    box["ack"] = m
                    break
        except Exception as e:
            box["err"] = repr(e)
    t = threading.Thread(target=callee)
    t.start()
    ct = f"<sip:alice@{alice.host};transport=ws;ob>"
    st, resp = alice.transact("INVITE", "sip:bob@localhost", "<sip:bob@localhost>",
                              f"Contact: {ct}\r\n", body="v=0\r\n")
    check("INVITE from the WebSocket answered 200", st == 200, resp[:300])
    rr = box.get("rr", "")
    check("Record-Route of the INVITE has a transport=ws entry", "transport=ws" in rr, rr)
    if st != 200:
        t.join(6)
        return
    # ACK through the route set (reversed Record-Route of the 200)
    rrs = [r.strip() for r in ", ".join(re.findall(r"^Record-Route:\s*(.*?)\r$", resp, re.M)).split(",")]
    route = ", ".join(reversed(rrs))
    to = header(resp, "To")
    cid = header(resp, "Call-ID")
    ack = (f"ACK sip:bob@127.0.0.1:{bob.port} SIP/2.0\r\nVia: SIP/2.0/WSS {alice.host};branch=z9hG4bK{tok()}\r\n"
           f"Max-Forwards: 69\r\nRoute: {route}\r\nTo: {to}\r\nFrom: <sip:alice@localhost>;tag={alice.tag}\r\n"
           f"Call-ID: {cid}\r\nCSeq: {header(resp, 'CSeq').split()[0]} ACK\r\nContent-Length: 0\r\n\r\n")
    alice.ws.send(1, ack)
    t.join(6)
    check("ACK reaches the callee through the Record-Route", "ack" in box, str(box.get("err")))
    # BYE from the callee: Route = the Record-Route as received
    bye = (f"BYE sip:alice@{alice.host};transport=ws SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bK{tok()};rport\r\n"
           f"Max-Forwards: 70\r\nRoute: {rr}\r\nFrom: {to}\r\n"
           f"To: <sip:alice@localhost>;tag={alice.tag}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\n"
           f"Content-Length: 0\r\n\r\n")
    bob.sock.sendto(bye.encode(), bob.server)
    got = None
    try:
        while True:
            m = alice.next_sip(5)
            if m.startswith("BYE"):
                got = m
                break
    except Exception as e:
        check("in-dialog BYE comes back to the WebSocket", False, repr(e))
        return
    check("in-dialog BYE comes back to the WebSocket", got is not None)
    alice.answer(got, 200)
    try:
        while True:
            m = bob.recv(5)
            if m.startswith("SIP/2.0"):
                break
        check("the browser's 200 for the BYE reaches the callee", status_of(m) == 200, m[:200])
    except Exception as e:
        check("the browser's 200 for the BYE reaches the callee", False, repr(e))


def sip_checks(a):
    host = "127.0.0.1"
    # the upgrade without the 'sip' subprotocol is refused
    try:
        WS(host, a.http, "/sip", protocols=())
        check("upgrade without subprotocol refused", False, "accepted")
    except WSError as e:
        check("upgrade without subprotocol refused", "400" in str(e), str(e))
    try:
        WS(host, a.http, "/sip", protocols=("chat",))
        check("upgrade with another subprotocol refused", False, "accepted")
    except WSError as e:
        check("upgrade with another subprotocol refused", "400" in str(e), str(e))

    ws = WS(host, a.http, "/sip", protocols=("chat", "sip"))
    check("upgrade with 'sip' → 101, Sec-WebSocket-Protocol: sip", ws.protocol == "sip", ws.head)
    alice = WSUA(ws, "alice", "pw")
    st, msg = alice.register()
    check("REGISTER over WebSocket with digest → 200", st == 200, msg[:300])
    check("200 echoes the outbound contact",
          st == 200 and "reg-id=1" in (header(msg, "Contact") or ""), msg[:400])

    # ping answered with the same payload
    ws.send(9, b"hello")
    op, data = ws.recv()
    while op in (1, 2):  # e.g. an offline message delivered after the REGISTER
        alice.answer(data.decode(errors="replace"), 200)
        op, data = ws.recv()
    check("ping answered by pong with its payload", op == 10 and data == b"hello", f"{op} {data!r}")

    # a UDP user reaches alice on her WebSocket
    bob = UDPUA((host, a.sip), "bob", "pw")
    st, _ = bob.transact("REGISTER", "sip:localhost", "<sip:bob@localhost>",
                         f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\nExpires: 300\r\n")
    check("UDP user registers", st == 200, str(st))
    import threading
    res = {}

    def send_to_alice():
        res["st"], res["msg"] = bob.transact("MESSAGE", "sip:alice@localhost",
                                             "<sip:alice@localhost>", body="hello over ws")
    t = threading.Thread(target=send_to_alice)
    t.start()
    got = None
    try:
        while True:
            m = alice.next_sip(5)
            if m.startswith("MESSAGE") and m.endswith("hello over ws"):
                got = m
                break
            if m.startswith("MESSAGE"):  # e.g. an offline message delivered on REGISTER
                alice.answer(m, 200)
    except Exception as e:
        check("MESSAGE from UDP arrives on the WebSocket", False, repr(e))
    if got:
        check("MESSAGE from UDP arrives on the WebSocket", got.endswith("hello over ws"), got[:300])
        top_via = re.search(r"^Via:\s*(.*?)\r$", got, re.M).group(1)
        want = "SIP/2.0/WSS " if WS.tls else "SIP/2.0/WS "
        check("forwarded MESSAGE has Via " + want.strip(), top_via.startswith(want), top_via)
        alice.answer(got, 200)
    t.join(10)
    check("WebSocket user's 200 reaches the UDP sender", res.get("st") == 200, str(res.get("st")))

    # and back: alice → bob
    res2 = {}

    def bob_listen():
        try:
            m = bob.recv(5)
            res2["msg"] = m
            bob.answer(m, 200)
        except Exception as e:
            res2["err"] = repr(e)
    t = threading.Thread(target=bob_listen)
    t.start()
    st, msg = alice.transact("MESSAGE", "sip:bob@localhost", "<sip:bob@localhost>",
                             body="hello from the browser")
    t.join(10)
    check("MESSAGE from the WebSocket reaches the UDP user",
          res2.get("msg", "").endswith("hello from the browser"), str(res2)[:300])
    check("UDP user's 200 reaches the WebSocket user", st == 200, msg[:300])

    # a call: INVITE from the WebSocket, Record-Route with transport=ws, and a BYE from the
    # callee that comes back to the browser on its connection through the route set
    invite_dialog(alice, bob)

    # fragmented message reassembled: OPTIONS in three frames
    opt = alice.build("OPTIONS", "sip:localhost", "<sip:localhost>", tok(), 1)
    ws.send(1, opt[:20], fin=False)
    ws.send(0, opt[20:40], fin=False)
    ws.send(0, opt[40:], fin=True)
    try:
        m = alice.next_sip(5)
        check("fragmented message reassembled (OPTIONS → 200)", status_of(m) == 200, m[:200])
    except Exception as e:
        check("fragmented message reassembled (OPTIONS → 200)", False, repr(e))

    # the connection closes: alice's binding goes; bob's MESSAGE is stored (202)
    ws.close(1000)
    time.sleep(0.5)
    st, msg = bob.transact("MESSAGE", "sip:alice@localhost", "<sip:alice@localhost>",
                           body="after close")
    check("closed WebSocket drops its binding (MESSAGE → 202 stored)", st == 202, msg[:300])

    # a frame above the SIP message limit → close 1009
    ws = WS(host, a.http, "/sip")
    ws.send(1, b"x" * (a.max + 100))
    try:
        op, data = ws.recv()
        code = struct.unpack("!H", data[:2])[0] if op == 8 and len(data) >= 2 else None
        check("oversize message → close 1009", op == 8 and code == 1009, f"{op} {data[:20]!r}")
    except Exception as e:
        check("oversize message → close 1009", False, repr(e))

    # an unmasked client frame is a protocol error → close 1002
    ws = WS(host, a.http, "/sip")
    ws.send(1, b"OPTIONS", mask=False)
    try:
        op, data = ws.recv()
        code = struct.unpack("!H", data[:2])[0] if op == 8 and len(data) >= 2 else None
        check("unmasked frame → close 1002", op == 8 and code == 1002, f"{op} {data[:20]!r}")
    except Exception as e:
        check("unmasked frame → close 1002", False, repr(e))

    # text that is not UTF-8 → 1007; a reserved bit or an unknown opcode → 1002
    for name, op, payload, want in (("invalid UTF-8 text → close 1007", 1, b"\xff\xfe OPTIONS", 1007),
                                    ("reserved bit set → close 1002", 1 | 0x40, b"abc", 1002),
                                    ("unknown opcode → close 1002", 3, b"abc", 1002)):
        ws = WS(host, a.http, "/sip")
        ws.send(op, payload)
        try:
            op2, data = ws.recv()
            code = struct.unpack("!H", data[:2])[0] if op2 == 8 and len(data) >= 2 else None
            check(name, code == want, f"{op2} {data[:20]!r}")
        except Exception as e:
            check(name, False, repr(e))

    # a clean close is answered with 1000
    ws = WS(host, a.http, "/sip")
    ws.send(8, struct.pack("!H", 1000))
    try:
        op, data = ws.recv()
        check("close 1000 answered with close 1000",
              op == 8 and struct.unpack("!H", data[:2])[0] == 1000, f"{op} {data!r}")
    except Exception as e:
        check("close 1000 answered with close 1000", False, repr(e))


def ping_check(a):
    """The server pings a silent WebSocket (http.ws_ping_interval)."""
    ws = WS("127.0.0.1", a.http, "/sip")
    ws.auto_pong = False
    try:
        op, data = ws.recv(timeout=a.wait)
        check("server pings a silent WebSocket", op == 9, f"{op} {data!r}")
    except Exception as e:
        check("server pings a silent WebSocket", False, repr(e))
    # not answering: the server closes
    try:
        end = time.time() + a.wait * 2 + 2
        closed = False
        while time.time() < end:
            op, data = ws.recv(timeout=end - time.time())
            if op == 8:
                closed = True
                break
    except (WSError, OSError):
        closed = True
    check("an unanswered ping closes the WebSocket", closed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["sip", "ping"])
    ap.add_argument("--http", type=int, required=True)
    ap.add_argument("--sip", type=int, default=0)
    ap.add_argument("--max", type=int, default=65536)
    ap.add_argument("--wait", type=float, default=3)
    ap.add_argument("--tls", action="store_true", help="wss:// (TLS, certificate not checked)")
    a = ap.parse_args()
    WS.tls = a.tls
    try:
        sip_checks(a) if a.cmd == "sip" else ping_check(a)
    except Exception as e:
        check("no exception", False, repr(e))


if __name__ == "__main__":
    main()

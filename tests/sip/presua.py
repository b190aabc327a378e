#!/usr/bin/env python3
"""presua.py — a SIP presence user agent for wire tests (UDP, or TCP with --tcp),
built on sipua.py's digest: SUBSCRIBE dialogs (refresh, unsubscribe), PUBLISH
with entity-tags, REGISTER, and NOTIFYs received and answered (with a status the
test chooses). Standard library only; loopback only.

Used as a module by presence_test.py; every call returns what came back so the
test can assert on it.
"""
import hashlib, random, re, socket, time

import sipua


def tok():
    return "%x" % random.getrandbits(48)


def hdr(msg, name):
    """First value of header name (case-insensitive), or None."""
    m = re.search(r"(?im)^" + re.escape(name) + r"\s*:\s*(.*?)\r?$", msg.split("\r\n\r\n", 1)[0])
    return m.group(1).strip() if m else None


def body(msg):
    return msg.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in msg else ""


def status(msg):
    m = re.match(r"SIP/2.0 (\d+)", msg)
    return int(m.group(1)) if m else 0


class PUA:
    def __init__(self, server, user, password, port=0, tcp=False):
        host, p = server.rsplit(":", 1)
        self.server = (host, int(p))
        self.user, self.password = user, password
        self.tcp = tcp
        self.domain = "localhost"
        if tcp:
            self.sock = socket.create_connection(self.server)
            self.port = self.sock.getsockname()[1]
            self.rbuf = b""
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", port))
            self.port = self.sock.getsockname()[1]
        self.nc = 0
        self.notifies = []         # NOTIFYs received (first copy of each)
        self.notify_status = 200   # what NOTIFYs are answered
        self.responses = []
        self.seen = set()

    @property
    def tp(self):
        return "TCP" if self.tcp else "UDP"

    def send(self, data):
        if self.tcp:
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, self.server)

    def _read(self, timeout):
        self.sock.settimeout(max(0.01, timeout))
        if not self.tcp:
            data, addr = self.sock.recvfrom(65535)
            return data.decode(errors="replace"), addr
        while True:
            head, sep, rest = self.rbuf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^(content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(2)) if m else 0
                if len(rest) >= n:
                    msg = head + sep + rest[:n]
                    self.rbuf = rest[n:]
                    return msg.decode(errors="replace"), None
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            self.rbuf += chunk

    def pump(self, timeout):
        """Reads one message (answering NOTIFYs); returns it or None on timeout."""
        try:
            data, addr = self._read(timeout)
        except socket.timeout:
            return None
        if data.startswith("NOTIFY "):
            self.answer(data, addr, self.notify_status)
            key = (hdr(data, "Call-ID"), hdr(data, "CSeq"))
            if key not in self.seen:
                self.seen.add(key)
                self.notifies.append(data)
        elif data.startswith("SIP/2.0"):
            self.responses.append(data)
        return data

    def answer(self, req, addr, code):
        lines = req.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [l for l in lines if re.match(r"(?i)(via|v|from|f|to|t|call-id|i|cseq)\s*:", l)]
        out = []
        for l in keep:
            if re.match(r"(?i)(to|t)\s*:", l) and ";tag=" not in l:
                l += ";tag=" + tok()
            out.append(l)
        resp = (f"SIP/2.0 {code} Whatever\r\n" + "\r\n".join(out) +
                f"\r\nContact: <sip:{self.user}@127.0.0.1:{self.port}>\r\nContent-Length: 0\r\n\r\n")
        if self.tcp:
            self.sock.sendall(resp.encode())
        else:
            self.sock.sendto(resp.encode(), addr)

    def wait_notify(self, timeout=5, pred=None):
        """The next NOTIFY received (after those already taken), or None."""
        end = time.time() + timeout
        while True:
            for i, n in enumerate(self.notifies):
                if pred is None or pred(n):
                    del self.notifies[: i + 1]
                    return n
            left = end - time.time()
            if left <= 0:
                return None
            self.pump(left)

    def build(self, method, ruri, to, cid, ftag, cseq, extra="", ctype="", bdy="", auth=""):
        branch = "z9hG4bK" + tok()
        return (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/{self.tp} 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <sip:{self.user}@{self.domain}>;tag={ftag}\r\n"
                f"To: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}{auth}"
                + (f"Content-Type: {ctype}\r\n" if bdy else "")
                + f"Content-Length: {len(bdy.encode())}\r\n\r\n{bdy}").encode()

    def wait_final(self, pkt, cid, cseq, timeout=8):
        self.responses = []
        self.send(pkt)
        end = time.time() + timeout
        nxt = time.time() + 0.5
        while time.time() < end:
            self.pump(min(nxt, end) - time.time())
            for r in self.responses:
                if hdr(r, "Call-ID") == cid and hdr(r, "CSeq").startswith(f"{cseq} ") and status(r) >= 200:
                    return r
            if not self.tcp and time.time() >= nxt:
                self.send(pkt)
                nxt = time.time() + 1
        return None

    def transact(self, method, ruri, to, extra="", ctype="", bdy="", cid=None, ftag=None, cseq=1):
        """Sends a request, answering one 401/407 with credentials. Returns (response, cseq)."""
        cid = cid or tok() + "@test"
        ftag = ftag or tok()
        auth = ""
        for _ in range(2):
            r = self.wait_final(self.build(method, ruri, to, cid, ftag, cseq, extra, ctype, bdy, auth), cid, cseq)
            if r is None:
                return None, cseq
            st = status(r)
            if st not in (401, 407):
                return r, cseq
            name = "WWW-Authenticate" if st == 401 else "Proxy-Authenticate"
            ch = hdr(r, name)
            realm = re.search(r'realm="([^"]*)"', ch).group(1)
            nonce = re.search(r'nonce="([^"]*)"', ch).group(1)
            self.nc += 1
            nc = "%08x" % self.nc
            cnonce = tok()
            h = lambda s: hashlib.md5(s.encode()).hexdigest()
            ha1 = h(f"{self.user}:{realm}:{self.password}")
            ha2 = h(f"{method}:{ruri}")
            resp = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            aname = "Authorization" if st == 401 else "Proxy-Authorization"
            auth = (f'{aname}: Digest username="{self.user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="{ruri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, '
                    f'cnonce="{cnonce}"\r\n')
            cseq += 1
        return r, cseq

    def register(self, expires=300):
        r, _ = self.transact("REGISTER", f"sip:{self.server[0]}:{self.server[1]}",
                             f"<sip:{self.user}@{self.domain}>",
                             f"Contact: <sip:{self.user}@127.0.0.1:{self.port}"
                             + (";transport=tcp" if self.tcp else "") + f">\r\nExpires: {expires}\r\n")
        return status(r) if r else 0

    def publish(self, pidf, etag=None, expires=None, ctype="application/pidf+xml"):
        extra = "Event: presence\r\n"
        if etag:
            extra += f"SIP-If-Match: {etag}\r\n"
        if expires is not None:
            extra += f"Expires: {expires}\r\n"
        r, _ = self.transact("PUBLISH", f"sip:{self.user}@{self.domain}",
                             f"<sip:{self.user}@{self.domain}>", extra, ctype, pidf or "")
        return r

    def subscribe(self, target, event="presence", expires=None, accept=None):
        """Starts a subscription; returns (response, dialog)."""
        extra = (f"Event: {event}\r\nContact: <sip:{self.user}@127.0.0.1:{self.port}"
                 + (";transport=tcp" if self.tcp else "") + ">\r\n")
        if accept is None:
            accept = "application/watcherinfo+xml" if event.endswith("winfo") else "application/pidf+xml"
        if accept:
            extra += f"Accept: {accept}\r\n"
        if expires is not None:
            extra += f"Expires: {expires}\r\n"
        cid, ftag = tok() + "@test", tok()
        r, cseq = self.transact("SUBSCRIBE", f"sip:{target}@{self.domain}",
                                f"<sip:{target}@{self.domain}>", extra, cid=cid, ftag=ftag)
        d = None
        if r is not None and 200 <= status(r) < 300:
            to = hdr(r, "To")
            contact = re.search(r"<([^>]*)>", hdr(r, "Contact")).group(1)
            d = {"cid": cid, "ftag": ftag, "to": to, "cseq": cseq, "ruri": contact, "event": event}
        return r, d

    def resubscribe(self, d, expires, event=None):
        d["cseq"] += 1
        extra = (f"Event: {event or d['event']}\r\nContact: <sip:{self.user}@127.0.0.1:{self.port}>\r\n"
                 f"Expires: {expires}\r\n")
        r = self.wait_final(self.build("SUBSCRIBE", d["ruri"], d["to"], d["cid"], d["ftag"], d["cseq"], extra),
                            d["cid"], d["cseq"])
        return r


def pidf(user, basic="open", tid="t1", note=None, contact=None):
    n = f"<note>{note}</note>" if note else ""
    c = f"<contact>{contact}</contact>" if contact else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@localhost">'
            f'<tuple id="{tid}"><status><basic>{basic}</basic></status>{c}{n}</tuple></presence>')

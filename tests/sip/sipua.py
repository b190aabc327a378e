#!/usr/bin/env python3
"""sipua.py — a minimal SIP user agent over UDP for wire tests that need exact
control (which messages were acknowledged, what arrived, in which order).
Digest MD5 with qop=auth. Standard library only; loopback only.

  sipua.py send   --server H:P --user U --password P --to USER --count N [--prefix S]
        sends N MESSAGEs (bodies "S-1".."S-N") one after another; prints one line
        "ACKED <body> <status>" per 2xx/202 answer. Stops at the first failure.
  sipua.py listen --server H:P --user U --password P --port N --seconds S
        registers U at 127.0.0.1:N, answers 200 to every MESSAGE, prints
        "GOT <body>" per MESSAGE received (retransmissions counted once per
        Call-ID/CSeq), unregisters at the end.
"""
import argparse, hashlib, random, re, socket, sys, time

ALG = "MD5"

def h(s):
    f = hashlib.sha256 if ALG == "SHA-256" else hashlib.md5
    return f(s.encode()).hexdigest()

class UA:
    def __init__(self, server, user, password, port=0):
        host, p = server.rsplit(":", 1)
        self.server = (host, int(p))
        self.user, self.password = user, password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.domain = "localhost"
        self.nc = 0
        self.last = ""

    def tok(self):
        return "%x" % random.getrandbits(48)

    def request(self, method, ruri, to, body="", extra="", cid=None, cseq=1, auth=""):
        branch = "z9hG4bK" + self.tok()
        msg = (f"{method} {ruri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:{self.user}@{self.domain}>;tag={self.tag}\r\n"
               f"To: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}{auth}"
               + (f"Content-Type: text/plain\r\n" if body else "")
               + f"Content-Length: {len(body.encode())}\r\n\r\n{body}")
        return msg.encode()

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        data, addr = self.sock.recvfrom(65535)
        return data.decode(errors="replace"), addr

    def transact(self, method, ruri, to, body="", extra=""):
        """Sends a request, answers a 401/407 once with credentials; returns the
        final status (0 on timeout)."""
        self.tag = self.tok()
        cid = self.tok() + "@test"
        cseq = 1
        auth = ""
        for _ in range(2):
            pkt = self.request(method, ruri, to, body, extra, cid, cseq, auth)
            status, resp = self.wait_final(pkt, cseq)
            if status in (401, 407):
                hdr = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
                ch = [l for l in resp.split("\r\n") if l.lower().startswith(hdr.lower() + ":")
                      and re.search(r"algorithm=" + re.escape(ALG) + r"\b", l)]
                if not ch:
                    return status
                realm = re.search(r'realm="([^"]*)"', ch[0]).group(1)
                nonce = re.search(r'nonce="([^"]*)"', ch[0]).group(1)
                self.nc += 1
                nc = "%08x" % self.nc
                cnonce = self.tok()
                ha1 = h(f"{self.user}:{realm}:{self.password}")
                ha2 = h(f"{method}:{ruri}")
                r = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
                name = "Authorization" if status == 401 else "Proxy-Authorization"
                auth = (f'{name}: Digest username="{self.user}", realm="{realm}", '
                        f'nonce="{nonce}", uri="{ruri}", response="{r}", algorithm={ALG}, '
                        f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n')
                cseq += 1
                continue
            return status
        return status

    def wait_final(self, pkt, cseq):
        deadline = time.time() + 8
        interval = 0.5
        self.sock.sendto(pkt, self.server)
        nxt = time.time() + interval
        while time.time() < deadline:
            try:
                data, _ = self.recv(max(0.01, min(nxt, deadline) - time.time()))
            except socket.timeout:
                if time.time() >= nxt:
                    self.sock.sendto(pkt, self.server)
                    interval = min(interval * 2, 4)
                    nxt = time.time() + interval
                continue
            m = re.match(r"SIP/2.0 (\d+)", data)
            if not m or f"CSeq: {cseq} " not in data:
                continue
            st = int(m.group(1))
            if st >= 200:
                self.last = data
                return st, data
        return 0, ""

def answer(ua, req, addr, status=200):
    lines = req.split("\r\n")
    keep = [l for l in lines if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", l)]
    resp = f"SIP/2.0 {status} OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
    ua.sock.sendto(resp.encode(), addr)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--server", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--to")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prefix", default="m")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--expires", type=int, default=300)
    ap.add_argument("--no-register", action="store_true")
    ap.add_argument("--keep", action="store_true", help="listen: do not unregister at the end")
    ap.add_argument("--alg", default="MD5", choices=["MD5", "SHA-256"])
    ap.add_argument("--body", action="append",
                    help="send: these bodies in order (instead of --count/--prefix)")
    ap.add_argument("--show-from", action="store_true",
                    help="listen: print 'FROM <uri> <body>' lines instead of 'GOT <body>'")
    a = ap.parse_args()
    global ALG
    ALG = a.alg
    ua = UA(a.server, a.user, a.password, a.port)
    host = a.server
    if a.cmd == "send":
        bodies = a.body or [f"{a.prefix}-{i}" for i in range(1, a.count + 1)]
        for body in bodies:
            st = ua.transact("MESSAGE", f"sip:{a.to}@localhost", f"<sip:{a.to}@localhost>", body)
            if 200 <= st < 300:
                print(f"ACKED {body} {st}", flush=True)
            else:
                print(f"FAILED {body} {st}", flush=True)
                return 1
        return 0
    if a.cmd == "register":
        contact = f"Contact: <sip:{a.user}@127.0.0.1:{ua.port}>\r\nExpires: {a.expires}\r\n"
        st = ua.transact("REGISTER", f"sip:{host}", f"<sip:{a.user}@localhost>", "", contact)
        print(f"STATUS {st}", flush=True)
        for l in ua.last.split("\r\n"):
            if re.match(r"(?i)(min-expires|contact|retry-after)\s*:", l):
                print(l, flush=True)
        return 0
    if a.cmd == "listen":
        if not a.no_register:
            contact = f"Contact: <sip:{a.user}@127.0.0.1:{ua.port}>\r\nExpires: 300\r\n"
            st = ua.transact("REGISTER", f"sip:{host}", f"<sip:{a.user}@localhost>", "", contact)
            print(f"REGISTERED {st}", flush=True)
            if st != 200:
                return 1
        seen = set()
        end = time.time() + a.seconds
        while time.time() < end:
            try:
                data, addr = ua.recv(max(0.01, end - time.time()))
            except socket.timeout:
                break
            if data.startswith("MESSAGE "):
                key = (re.search(r"(?im)^call-id:\s*(\S+)", data).group(1),
                       re.search(r"(?im)^cseq:\s*(\d+)", data).group(1))
                answer(ua, data, addr)
                if key not in seen:
                    seen.add(key)
                    body = data.split("\r\n\r\n", 1)[1]
                    if a.show_from:
                        fr = re.search(r"(?im)^(?:from|f):[^<\r\n]*<([^>]*)>", data)
                        body = body.replace("\r\n", "\\n").replace("\n", "\\n")
                        print(f"FROM {fr.group(1) if fr else '?'} {body}", flush=True)
                    else:
                        print("GOT " + body, flush=True)
        if not a.keep:
            contact = f"Contact: <sip:{a.user}@127.0.0.1:{ua.port}>\r\nExpires: 0\r\n"
            ua.transact("REGISTER", f"sip:{host}", f"<sip:{a.user}@localhost>", "", contact)
        return 0
    return 2

if __name__ == "__main__":
    sys.exit(main())

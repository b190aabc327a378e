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
        Call-ID/CSeq), unregisters at the end. --show H1,H2 also prints
        "H <name>: <value>" for those headers of each MESSAGE and INVITE.
        --invite busy|ring|answer: INVITEs get 180 then 486 / nothing more
        (a CANCEL ends it with 487) / 200; each prints "INVITE <Request-URI>".
  sipua.py call   --server H:P --user U --password P --to USER|URI [--seconds S]
        sends an INVITE (answering one 407), prints "PROV <status>" per
        provisional and "FINAL <status>" (0 on timeout); ACKs it, and hangs up a
        2xx with BYE.
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
        self.ctype = "text/plain"

    def tok(self):
        return "%x" % random.getrandbits(48)

    def request(self, method, ruri, to, body="", extra="", cid=None, cseq=1, auth="",
                branch=None):
        branch = branch or "z9hG4bK" + self.tok()
        msg = (f"{method} {ruri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:{self.user}@{self.domain}>;tag={self.tag}\r\n"
               f"To: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}{auth}"
               + (f"Content-Type: {self.ctype}\r\n" if body else "")
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

def answer(ua, req, addr, status=200, totag=None, cseq_method=None):
    lines = req.split("\r\n\r\n", 1)[0].split("\r\n")  # headers only, never the body
    keep = [l for l in lines if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", l)]
    if totag:
        keep = [l + f";tag={totag}" if re.match(r"(?i)to\s*:", l) and "tag=" not in l else l
                for l in keep]
    if cseq_method:
        keep = [re.sub(r"(?i)^(cseq:\s*\d+)\s+\S+", r"\1 " + cseq_method, l) for l in keep]
    contact = f"Contact: <sip:{ua.user}@127.0.0.1:{ua.port}>\r\n" if status == 200 else ""
    resp = (f"SIP/2.0 {status} X\r\n" + "\r\n".join(keep) + "\r\n" + contact
            + "Content-Length: 0\r\n\r\n")
    ua.sock.sendto(resp.encode(), addr)

def hdr(data, name):
    m = re.search(r"(?im)^" + re.escape(name) + r"\s*:\s*(.*)$", data.split("\r\n\r\n", 1)[0])
    return m.group(1).strip() if m else ""

def call(ua, target, seconds):
    """INVITE target; returns the final status (0: none within seconds)."""
    ruri = target if target.startswith("sip:") else f"sip:{target}@localhost"
    ua.tag = ua.tok()
    cid = ua.tok() + "@test"
    cseq, auth = 1, ""
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    contact = f"Contact: <sip:{ua.user}@127.0.0.1:{ua.port}>\r\n"
    ua.ctype = "application/sdp"
    for _ in range(2):
        branch = "z9hG4bK" + ua.tok()
        pkt = ua.request("INVITE", ruri, f"<{ruri}>", sdp, contact, cid, cseq, auth, branch)
        ua.sock.sendto(pkt, ua.server)
        end = time.time() + seconds
        final, resp = 0, ""
        resend = time.time() + 0.5
        got_any = False
        while time.time() < end:
            try:
                data, _ = ua.recv(max(0.01, min(end, resend) - time.time()))
            except socket.timeout:
                if not got_any and time.time() >= resend:
                    ua.sock.sendto(pkt, ua.server)
                    resend = time.time() + 1
                continue
            if data.startswith("BYE ") or data.startswith("CANCEL "):
                answer(ua, data, ua.server)
                continue
            m = re.match(r"SIP/2.0 (\d+)", data)
            if not m or f"CSeq: {cseq} INVITE" not in data:
                continue
            got_any = True
            st = int(m.group(1))
            if st < 200:
                if st > 100:
                    print(f"PROV {st}", flush=True)
                continue
            final, resp = st, data
            break
        to = re.search(r"(?im)^to\s*:\s*(.*)$", resp).group(1).strip() if resp else f"<{ruri}>"
        if final and final < 300:
            # ACK and BYE through the Record-Route set (loose routes: Route = reversed RR)
            rr = re.findall(r"(?im)^record-route\s*:\s*(.*)$", resp)
            routes = ", ".join(reversed(", ".join(rr).split(", "))) if rr else ""
            rh = f"Route: {routes}\r\n" if routes else ""
            target_uri = re.search(r"(?im)^contact\s*:\s*<([^>]*)>", resp)
            turi = target_uri.group(1) if target_uri else ruri
            ua.sock.sendto(ua.request("ACK", turi, to, "", rh, cid, cseq), ua.server)
            print(f"FINAL {final}", flush=True)
            bye = ua.request("BYE", turi, to, "", rh, cid, cseq + 1)
            ua.wait_final(bye, cseq + 1)
            return final
        if final:
            ack = ua.request("ACK", ruri, to, "", auth, cid, cseq, "", branch)
            ua.sock.sendto(ack, ua.server)
        if final == 407 and not auth:
            ch = hdr(resp, "Proxy-Authenticate")
            realm = re.search(r'realm="([^"]*)"', ch).group(1)
            nonce = re.search(r'nonce="([^"]*)"', ch).group(1)
            ua.nc += 1
            nc = "%08x" % ua.nc
            cnonce = ua.tok()
            ha1 = h(f"{ua.user}:{realm}:{ua.password}")
            ha2 = h(f"INVITE:{ruri}")
            r = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            auth = (f'Proxy-Authorization: Digest username="{ua.user}", realm="{realm}", '
                    f'nonce="{nonce}", uri="{ruri}", response="{r}", algorithm={ALG}, '
                    f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n')
            cseq += 1
            continue
        print(f"FINAL {final}", flush=True)
        return final
    return 0

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
    ap.add_argument("--ctype", default="text/plain", help="send: Content-Type of the MESSAGEs")
    ap.add_argument("--body", default="", help="send: body text (\\n = CRLF; {n} = the label)")
    ap.add_argument("--show", default="", help="listen: headers to print, comma-separated")
    ap.add_argument("--invite", default="", choices=["", "busy", "ring", "answer"])
    a = ap.parse_args()
    global ALG
    ALG = a.alg
    ua = UA(a.server, a.user, a.password, a.port)
    ua.ctype = a.ctype
    host = a.server
    if a.cmd == "call":
        call(ua, a.to, a.seconds)
        return 0
    if a.cmd == "send":
        for i in range(1, a.count + 1):
            body = label = f"{a.prefix}-{i}"
            if a.ctype == "application/im-iscomposing+xml":
                body = ('<?xml version="1.0" encoding="UTF-8"?>\n<isComposing '
                        'xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>'
                        f'<contenttype>text/plain</contenttype><!--{a.prefix}-{i}--></isComposing>')
            if a.body:
                body = a.body.replace("\\n", "\r\n").replace("{n}", label)
            st = ua.transact("MESSAGE", f"sip:{a.to}@localhost", f"<sip:{a.to}@localhost>", body)
            if 200 <= st < 300:
                print(f"ACKED {label} {st}", flush=True)
            else:
                print(f"FAILED {label} {st}", flush=True)
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
        invites = {}
        end = time.time() + a.seconds
        while time.time() < end:
            try:
                data, addr = ua.recv(max(0.01, end - time.time()))
            except socket.timeout:
                break
            shown = [x for x in a.show.split(",") if x]
            if data.startswith("INVITE ") and a.invite:
                print("INVITE " + data.split(" ", 2)[1], flush=True)
                for name in shown:
                    print(f"H {name}: {hdr(data, name)}", flush=True)
                tt = ua.tok()
                invites[hdr(data, "Call-ID")] = (data, addr, tt)
                answer(ua, data, addr, 180, tt)
                if a.invite == "busy":
                    answer(ua, data, addr, 486, tt)
                elif a.invite == "answer":
                    answer(ua, data, addr, 200, tt)
                continue
            if data.startswith("CANCEL "):
                answer(ua, data, addr, 200)
                inv = invites.get(hdr(data, "Call-ID"))
                if inv:
                    answer(ua, inv[0], inv[1], 487, inv[2])
                    print("CANCELLED", flush=True)
                continue
            if data.startswith("BYE "):
                answer(ua, data, addr, 200)
                continue
            if data.startswith("MESSAGE "):
                for name in shown:
                    print(f"H {name}: {hdr(data, name)}", flush=True)
                key = (re.search(r"(?im)^call-id:\s*(\S+)", data).group(1),
                       re.search(r"(?im)^cseq:\s*(\d+)", data).group(1))
                answer(ua, data, addr)
                if key not in seen:
                    seen.add(key)
                    print("GOT " + data.split("\r\n\r\n", 1)[1], flush=True)
        if not a.keep:
            contact = f"Contact: <sip:{a.user}@127.0.0.1:{ua.port}>\r\nExpires: 0\r\n"
            ua.transact("REGISTER", f"sip:{host}", f"<sip:{a.user}@localhost>", "", contact)
        return 0
    return 2

if __name__ == "__main__":
    sys.exit(main())

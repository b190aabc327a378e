#!/usr/bin/env python3
"""tlsprobe.py — a small SIP-over-TLS client for the TLS wire tests (standard
library only; loopback only; every wait bounded).

  tlsprobe.py options HOST PORT [--cert C --key K] [--ca CA]
      one OPTIONS over a new TLS connection; prints "status=N fp=FINGERPRINT
      version=TLSv1.x" (status 0 when no answer / the connection failed).
  tlsprobe.py hup HOST PORT --run 'SHELL COMMAND'
      connection 1: OPTIONS; then runs the command (it rewrites the config and
      sends SIGHUP), waits, OPTIONS again on connection 1, and opens connection
      2; prints "old_status=N old_fp=A again_status=M again_fp=A new_fp=B".
  tlsprobe.py slow HOST PORT --limit S
      opens a TCP connection to a TLS port, sends half a ClientHello and waits
      (at most S seconds) for the server to close it; prints "closed_after=SECONDS"
      or "closed_after=none".
  tlsprobe.py listen HOST PORT --user U --password P --seconds S
      registers U over TLS (Contact ;transport=tls, digest MD5), then waits on
      that connection for a request, answers it 200 and prints
      "GOT METHOD VIA-TRANSPORT" and "RR <Record-Route>" (or "GOT nothing").
  tlsprobe.py invite HOST PORT --user U --password P --to URI
      sends an INVITE to URI over TLS as U (answering a 407 with credentials);
      prints "status=N" of the final response (0 when none came in 10 s).
"""
import argparse, hashlib, random, re, socket, ssl, subprocess, sys, time


def tok():
    return "%x" % random.getrandbits(48)


def connect(host, port, cert=None, key=None, ca=None, timeout=5):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.connect((host, port))
    s = ctx.wrap_socket(raw)
    return s


def fingerprint(s):
    der = s.getpeercert(binary_form=True)
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


class Reader:
    """Frames SIP messages on a stream: headers, blank line, Content-Length body."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def message(self, timeout):
        end = time.time() + timeout
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = self.buf[:i].decode(errors="replace")
                m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(self.buf) >= i + 4 + n:
                    body = self.buf[i + 4:i + 4 + n]
                    self.buf = self.buf[i + 4 + n:]
                    return head, body
            left = end - time.time()
            if left <= 0:
                return None, None
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None, None
            if not data:
                return None, None
            self.buf += data


def request(method, ruri, user, port, cid, cseq, extra="", to=None):
    to = to or f"<{ruri}>"
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK{tok()};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@localhost>;tag={tok()}\r\n"
            f"To: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}"
            f"Content-Length: 0\r\n\r\n").encode()


def status_of(head):
    if not head:
        return 0
    m = re.match(r"SIP/2.0 (\d+)", head)
    return int(m.group(1)) if m else 0


def options(s, rd):
    port = s.getsockname()[1]
    s.sendall(request("OPTIONS", "sip:localhost", "probe", port, tok(), 1))
    head, _ = rd.message(5)
    return status_of(head)


def cmd_options(a):
    try:
        s = connect(a.host, a.port, a.cert, a.key, a.ca)
    except (OSError, ssl.SSLError) as e:
        print(f"status=0 fp=- version=- error={e.__class__.__name__}")
        return 1
    fp, ver = fingerprint(s), s.version()
    try:
        st = options(s, Reader(s))
    except (OSError, ssl.SSLError):
        st = 0
    print(f"status={st} fp={fp} version={ver}")
    s.close()
    return 0 if st == 200 else 1


def cmd_hup(a):
    s1 = connect(a.host, a.port)
    r1 = Reader(s1)
    fp1, st1 = fingerprint(s1), options(s1, r1)
    subprocess.run(a.run, shell=True, check=False, timeout=20)
    time.sleep(a.wait)
    st2 = options(s1, r1)
    fp1b = fingerprint(s1)
    s2 = connect(a.host, a.port)
    fp2 = fingerprint(s2)
    st3 = options(s2, Reader(s2))
    print(f"old_status={st1} old_fp={fp1} again_status={st2} again_fp={fp1b} "
          f"new_fp={fp2} new_status={st3}")
    return 0


def cmd_slow(a):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((a.host, a.port))
    # a TLS record header announcing a 512-byte ClientHello, then nothing more
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
    t0 = time.time()
    s.settimeout(a.limit)
    try:
        data = s.recv(100)
        print(f"closed_after={time.time() - t0:.1f}" if not data else "closed_after=data")
    except socket.timeout:
        print("closed_after=none")
    except OSError:
        print(f"closed_after={time.time() - t0:.1f}")
    return 0


def digest(user, pw, method, uri, chal):
    realm = re.search(r'realm="([^"]*)"', chal).group(1)
    nonce = re.search(r'nonce="([^"]*)"', chal).group(1)
    cnonce, nc = tok(), "00000001"
    md5 = lambda x: hashlib.md5(x.encode()).hexdigest()
    ha1, ha2 = md5(f"{user}:{realm}:{pw}"), md5(f"{method}:{uri}")
    resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


def cmd_listen(a):
    s = connect(a.host, a.port)
    rd = Reader(s)
    port = s.getsockname()[1]
    cid = tok()
    ct = f"Contact: <sip:{a.user}@127.0.0.1:{port};transport=tls>\r\nExpires: 300\r\n"
    to = f"<sip:{a.user}@localhost>"
    s.sendall(request("REGISTER", "sip:localhost", a.user, port, cid, 1, ct, to))
    head, _ = rd.message(5)
    if status_of(head) == 401:
        chal = re.search(r"(?im)^WWW-Authenticate:\s*(.*)$", head).group(1)
        auth = "Authorization: " + digest(a.user, a.password, "REGISTER", "sip:localhost",
                                          chal) + "\r\n"
        s.sendall(request("REGISTER", "sip:localhost", a.user, port, cid, 2, ct + auth, to))
        head, _ = rd.message(5)
    if status_of(head) != 200:
        print(f"REGISTER failed: {status_of(head)}")
        return 1
    print("REGISTERED", flush=True)
    end = time.time() + a.seconds
    while time.time() < end:
        head, _ = rd.message(end - time.time())
        if head is None:
            break
        if head.startswith("SIP/2.0"):
            continue
        method = head.split(" ", 1)[0]
        vias = re.findall(r"(?im)^Via:\s*(.*)$", head)
        keep = [l for l in head.split("\r\n")
                if re.match(r"(?i)^(via|from|to|call-id|cseq|record-route)\s*:", l)]
        resp = "SIP/2.0 200 OK\r\n" + "\r\n".join(
            (l + ";tag=" + tok()) if re.match(r"(?i)^to\s*:", l) and "tag=" not in l else l
            for l in keep) + "\r\nContent-Length: 0\r\n\r\n"
        s.sendall(resp.encode())
        tp = vias[0].split()[0] if vias else "-"
        print(f"GOT {method} {tp}", flush=True)
        for rr in re.findall(r"(?im)^Record-Route:\s*(.*)$", head):
            print(f"RR {rr.strip()}", flush=True)
        time.sleep(0.5)
        return 0
    print("GOT nothing")
    return 1


def cmd_invite(a):
    s = connect(a.host, a.port)
    rd = Reader(s)
    port = s.getsockname()[1]
    cid = tok()
    ct = f"Contact: <sip:{a.user}@127.0.0.1:{port};transport=tls>\r\n"
    s.sendall(request("INVITE", a.to, a.user, port, cid, 1, ct))
    end = time.time() + 10
    cseq = 1
    while time.time() < end:
        head, _ = rd.message(end - time.time())
        st = status_of(head)
        if st == 0:
            break
        if st < 200:
            continue
        if st == 407 and cseq == 1:
            s.sendall(request("ACK", a.to, a.user, port, cid, 1))
            chal = re.search(r"(?im)^Proxy-Authenticate:\s*(.*)$", head).group(1)
            auth = "Proxy-Authorization: " + digest(a.user, a.password, "INVITE", a.to,
                                                    chal) + "\r\n"
            cseq = 2
            s.sendall(request("INVITE", a.to, a.user, port, cid, 2, ct + auth))
            continue
        print(f"status={st}")
        return 0 if st == 200 else 1
    print("status=0")
    return 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["options", "hup", "slow", "listen", "invite"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--run", default="true")
    p.add_argument("--wait", type=float, default=1.0)
    p.add_argument("--limit", type=float, default=10)
    p.add_argument("--user", default="bob")
    p.add_argument("--password", default="secret")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--to")
    a = p.parse_args()
    return {"options": cmd_options, "hup": cmd_hup, "slow": cmd_slow,
            "listen": cmd_listen, "invite": cmd_invite}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

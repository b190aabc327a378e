#!/usr/bin/env python3
"""stun_probe.py — raw STUN checks the coturn tools cannot make.

  stun_probe.py udp|tcp HOST PORT binding      → prints "mapped IP:PORT"
  stun_probe.py udp|tcp HOST PORT unknown      → prints "error CODE [unknown 0xNNNN]"
  stun_probe.py udp HOST PORT allocate USER PASS → prints "error CODE" or "relay IP:PORT"
  stun_probe.py udp HOST PORT burst USER PASS N  → allocation + channel to a local peer, then
      N ChannelData of mixed sizes sent back to back (the server reads them in batches and
      sends runs to one peer with GSO), N back from the peer, then 5 spaced single ones;
      prints "out K/N in order, back K/N in order, quiet K/5"
"""
import hashlib, hmac, os, socket, struct, sys, time, zlib

MAGIC = 0x2112A442


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def msg(mtype, tid, attrs, key=None):
    body = b"".join(attrs)
    if key is not None:
        hdr = struct.pack("!HHI", mtype, len(body) + 24, MAGIC) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    hdr = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(hdr + body) & 0xFFFFFFFF) ^ 0x5354554E
    body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), MAGIC) + tid + body


def parse(data):
    mtype, length, _ = struct.unpack("!HHI", data[:8])
    tid, off, out = data[8:20], 20, {}
    while off < 20 + length:
        t, n = struct.unpack("!HH", data[off:off + 4])
        out.setdefault(t, data[off + 4:off + 4 + n])
        off += 4 + (n + 3) // 4 * 4
    return mtype, tid, out


def xaddr(v, tid):
    port = struct.unpack("!H", v[2:4])[0] ^ (MAGIC >> 16)
    if v[1] == 1:
        ip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack("!I", MAGIC)))
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, ip), port)
    ip = bytes(a ^ b for a, b in zip(v[4:20], struct.pack("!I", MAGIC) + tid))
    return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, ip), port)


def xattr(t, host, port, tid):
    """An XOR-address attribute of type t for an IPv4 host:port."""
    ip = bytes(a ^ b for a, b in zip(socket.inet_aton(host), struct.pack("!I", MAGIC)))
    return attr(t, struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + ip)


def payload(i, size):
    return struct.pack("!I", i) + bytes([i % 251]) * (size - 4)


def collect(sock, want, secs):
    """Up to want datagrams from sock within secs."""
    got, end = [], time.time() + secs
    while len(got) < want and time.time() < end:
        sock.settimeout(max(0.01, end - time.time()))
        try:
            got.append(sock.recv(65536))
        except socket.timeout:
            break
    return got


def burst(host, port, user, pw, n):
    tid = os.urandom(12)
    rt = attr(0x0019, b"\x11\0\0\0")
    data, s = exchange("udp", host, port, msg(0x0003, tid, [rt]))
    _, _, a = parse(data)
    realm, nonce = a[0x0014], a[0x0015]
    key = hashlib.md5(user + b":" + realm + b":" + pw).digest()
    cred = [attr(0x0006, user), attr(0x0014, realm), attr(0x0015, nonce)]
    tid = os.urandom(12)
    s.sendto(msg(0x0003, tid, [rt] + cred, key), (host, port))
    mtype, _, a = parse(s.recv(65536))
    assert mtype == 0x0103, "allocate failed"
    rhost, rport = xaddr(a[0x0016], tid).rsplit(":", 1)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    peer.bind(("127.0.0.1", 0))
    pport = peer.getsockname()[1]
    tid = os.urandom(12)
    chan = attr(0x000C, struct.pack("!HH", 0x4000, 0))
    s.sendto(msg(0x0009, tid, [chan, xattr(0x0012, "127.0.0.1", pport, tid)] + cred, key),
             (host, port))
    mtype, _, _ = parse(s.recv(65536))
    assert mtype == 0x0109, "channel bind failed"
    # Runs of equal sizes, shorter ends, one above the GSO segment cap, one above the send slot.
    cycle = [160, 160, 160, 100, 100, 160, 1200, 1200, 1200, 1200, 60, 1400, 1400, 1480,
             700, 700, 1600, 20, 20]
    sent = [payload(i, cycle[i % len(cycle)]) for i in range(n)]
    for p in sent:
        s.sendto(struct.pack("!HH", 0x4000, len(p)) + p, (host, port))
    out = collect(peer, n, 3)
    back = []
    for i, p in enumerate(sent):
        peer.sendto(p, (rhost, int(rport)))
        if i % 25 == 24:
            time.sleep(0.002)  # the relay socket has the default receive buffer
    for d in collect(s, n, 3):
        ch, ln = struct.unpack("!HH", d[:4])
        back.append(d[4:4 + ln] if ch == 0x4000 else b"")
    quiet = 0
    for i in range(5):
        time.sleep(0.03)
        p = payload(n + i, 160)
        s.sendto(struct.pack("!HH", 0x4000, len(p)) + p, (host, port))
        if collect(peer, 1, 0.5) == [p]:
            quiet += 1
    print("out %d/%d %s, back %d/%d %s, quiet %d/5" % (
        len(out), n, "in order" if out == sent else "wrong",
        len(back), n, "in order" if back == sent else "wrong", quiet))


def exchange(proto, host, port, data):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        # STUN_PROBE_PORT: a source port of the test's own, where an ephemeral one could be
        # the port of an earlier probe whose allocation still lives (437 Allocation Mismatch)
        if os.environ.get("STUN_PROBE_PORT"):
            s.bind(("127.0.0.1", int(os.environ["STUN_PROBE_PORT"])))
        s.sendto(data, (host, port))
        return s.recv(65536), s
    s = socket.create_connection((host, port), timeout=2)
    s.sendall(data)
    buf = b""
    while len(buf) < 20 or len(buf) < 20 + struct.unpack("!H", buf[2:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf, s


def error_of(attrs):
    v = attrs.get(0x0009)
    return (v[2] & 7) * 100 + v[3] if v else None


def main():
    proto, host, port, what = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tid = os.urandom(12)
    if what == "binding":
        data, _ = exchange(proto, host, port, msg(0x0001, tid, []))
        mtype, rtid, a = parse(data)
        assert rtid == tid and mtype == 0x0101
        print("mapped", xaddr(a[0x0020], tid))
    elif what == "unknown":
        data, _ = exchange(proto, host, port, msg(0x0001, tid, [attr(0x7F01, b"abcd")]))
        _, _, a = parse(data)
        print("error", error_of(a), "unknown 0x%04x" % struct.unpack("!H", a[0x000A][:2])[0])
    elif what == "burst":
        burst(host, port, sys.argv[5].encode(), sys.argv[6].encode(), int(sys.argv[7]))
    elif what == "allocate":
        user, pw = sys.argv[5].encode(), sys.argv[6].encode()
        rt = attr(0x0019, b"\x11\0\0\0")
        data, s = exchange(proto, host, port, msg(0x0003, tid, [rt]))
        _, _, a = parse(data)
        if error_of(a) != 401:
            print("error", error_of(a))
            return
        realm, nonce = a[0x0014], a[0x0015]
        key = hashlib.md5(user + b":" + realm + b":" + pw).digest()
        tid = os.urandom(12)
        req = msg(0x0003, tid, [rt, attr(0x0006, user), attr(0x0014, realm), attr(0x0015, nonce)], key)
        s.sendto(req, (host, port))
        mtype, _, a = parse(s.recv(65536))
        if mtype == 0x0103:
            print("relay", xaddr(a[0x0016], tid))
        else:
            print("error", error_of(a))


main()

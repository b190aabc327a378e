#!/usr/bin/env python3
"""torture.py SERVER_IP PORT DATA_DIR — sends every RFC 4475 message of
DATA_DIR/index.tsv to a running rtcd over UDP (with ";rport" added to the first Via line,
so that answers come back to the sending socket) and prints one line per file:
    <file> <class> <answer status or "none">
Requests are sent once; the answer is waited for 1.5 s (retransmissions of the
server are ignored)."""
import os, re, socket, sys

ip, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = []
for line in open(os.path.join(d, "index.tsv")):
    if line.startswith("#") or not line.strip():
        continue
    f = line.split("\t")
    rows.append((f[0], f[2]))
for name, cls in rows:
    data = open(os.path.join(d, name), "rb").read()
    # Answers go to the Via's port (RFC 3261 §18.2.2): ask for rport (RFC 3581) on the
    # first Via line so they come back to this socket. Nothing else is changed.
    m = re.search(rb"(?im)^(via|v)[ \t]*:[^\r\n]*(\r\n[ \t][^\r\n]*)*", data)
    if m and b"rport" not in m.group(0).lower():
        data = data[:m.end()] + b";rport" + data[m.end():]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(1.5)
    s.sendto(data, (ip, port))
    status = "none"
    try:
        while True:
            resp, _ = s.recvfrom(65535)
            m = re.match(rb"SIP/2.0 (\d{3})([^\r\n]*)", resp)
            if m:
                status = m.group(1).decode()
                reason = m.group(2).decode(errors="replace").strip()
                if not status.startswith("1"):
                    break
    except socket.timeout:
        pass
    finally:
        s.close()
    print(name, cls, status, flush=True)

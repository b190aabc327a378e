#!/usr/bin/env python3
"""cdp_eval.py PORT EXPR [SECONDS] — evaluates EXPR in the first page of a Chromium
started with --remote-debugging-port=PORT (Chrome DevTools Protocol over the WebSocket
client of tests/http/wsclient.py), every 0.2 s until it returns a non-empty value or
SECONDS pass; prints the last value. Standard library only; loopback only."""
import json, os, sys, time, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from wsclient import WS  # noqa: E402

port, expr = int(sys.argv[1]), sys.argv[2]
end = time.time() + float(sys.argv[3] if len(sys.argv) > 3 else 10)
page = None
while time.time() < end and not page:
    try:
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2))
        page = next((p for p in pages if p.get("type") == "page"), None)
    except OSError:
        pass
    time.sleep(0.2)
if not page:
    print("no page")
    sys.exit(1)
path = page["webSocketDebuggerUrl"].split(str(port), 1)[1]
ws = WS("127.0.0.1", port, path, protocols=())
value, n = "", 0
while time.time() < end:
    n += 1
    ws.send(1, json.dumps({"id": n, "method": "Runtime.evaluate",
                           "params": {"expression": expr, "returnByValue": True}}))
    while True:
        op, data = ws.recv(5)
        m = json.loads(data)
        if m.get("id") == n:
            break
    value = m.get("result", {}).get("result", {}).get("value") or ""
    if value:
        break
    time.sleep(0.2)
print(value)
ws.close()

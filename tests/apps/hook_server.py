#!/usr/bin/env python3
"""A tiny HTTP receiver for the webhook and bot tests (Python standard library only).

hook_server.py PORT LOGFILE [SECRET]
Every POST is appended to LOGFILE as one JSON line {path, sig_ok, body}. Paths:
  /ok         200, JSON {"echo": <request body>, "sig_ok": bool}
  /flaky/N    503 for the first N requests with that path, then 200 "ok"
  /slow       sleeps 3 s, then 200
  /big        200 with 200 KiB of body
  /status/C   answers status C
  /bot        a bot: see examples/bot/README in docs/apps.md (echo + a choice)
"""
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]
SECRET = sys.argv[3].encode() if len(sys.argv) > 3 else b"s3cret"
counts = {}
lock = threading.Lock()


def bot_answer(ev):
    """The echo bot: offers a choice on 'menu', reacts to the choice with its context."""
    text = ev.get("text", "")
    if ev.get("reply_to"):
        rt = ev["reply_to"]
        if ev.get("choice"):
            return {"text": "you chose %s (%s)" % (ev["choice"], rt.get("context", ""))}
        return {"text": "not one of the choices: %s" % text,
                "choices": rt.get("choices", []), "context": rt.get("context", "")}
    if text.strip().lower() == "menu":
        return {"text": "coffee or tea?", "choices": ["coffee", "tea"], "context": "order-1"}
    if text.strip().lower() == "silent":
        return None
    return {"text": "echo: " + text}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        b = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        want = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(want, self.headers.get("X-Rtcd-Signature", ""))
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            c = counts[self.path]
            with open(LOG, "a") as f:
                f.write(json.dumps({"path": self.path, "sig_ok": sig_ok,
                                    "body": body.decode("utf-8", "replace")}) + "\n")
        p = self.path
        if p == "/ok":
            self.send(200, json.dumps({"echo": body.decode(), "sig_ok": sig_ok}))
        elif p.startswith("/flaky/"):
            if c <= int(p.split("/")[2]):
                self.send(503, "busy", "text/plain")
            else:
                self.send(200, "ok after %d" % c, "text/plain")
        elif p == "/slow":
            time.sleep(3)
            self.send(200, "late", "text/plain")
        elif p == "/big":
            self.send(200, b"x" * 204800, "text/plain")
        elif p.startswith("/status/"):
            self.send(int(p.split("/")[2]), "status", "text/plain")
        elif p == "/bot":
            if not sig_ok:
                self.send(401, "bad signature", "text/plain")
                return
            ans = bot_answer(json.loads(body))
            if ans is None:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send(200, json.dumps(ans))
        else:
            self.send(404, "no such path", "text/plain")


srv = ThreadingHTTPServer(("127.0.0.1", PORT), H)
srv.daemon_threads = True
print("listening", flush=True)
srv.serve_forever()

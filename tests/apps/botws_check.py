#!/usr/bin/env python3
"""A bot over /api/v1/bot/ws (issue 9 item 3), driven by tests/apps/bot_test.sh.

botws_check.py HTTP_PORT SIP_SERVER ALICE_LOG
Keys in the environment: WSBOT_KEY (scopes bot, address sip:wsbot@localhost),
NOTIFY_KEY (no bot scope). alice's device is a sipua.py listener writing ALICE_LOG.
Prints "PASS name" / "FAIL name: detail".
"""
import json, os, subprocess, sys, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "http"))
from wsclient import WS, WSError  # noqa: E402

PORT, SIP, ALICE_LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
KEY, NOKEY = os.environ["WSBOT_KEY"], os.environ["NOTIFY_KEY"]
failed = 0


def check(name, cond, detail=""):
    global failed
    print(("PASS %s" % name) if cond else ("FAIL %s: %s" % (name, detail)), flush=True)
    failed += 0 if cond else 1


def alice_says(text):
    r = subprocess.run([sys.executable, os.path.join(here, "..", "sip", "sipua.py"), "send",
                        "--server", SIP, "--user", "alice", "--password", "secret",
                        "--to", "wsbot", "--text", text], capture_output=True, text=True)
    return r.stdout.strip()


def alice_got(pattern, secs=5):
    end = time.time() + secs
    while time.time() < end:
        with open(ALICE_LOG) as f:
            if any(pattern in line for line in f):
                return True
        time.sleep(0.1)
    return False


def event(ws):
    op, data = ws.recv(5)
    return json.loads(data) if op == 1 else {"_op": op}


for hdr, want, name in (({"Authorization": "Bearer " + NOKEY}, "403", "a key without the bot scope"),
                        ({"Authorization": "Bearer nonsense"}, "401", "a wrong key"),
                        ({}, "401", "no key")):
    try:
        WS("127.0.0.1", PORT, "/api/v1/bot/ws", protocols=(), headers=hdr)
        check(f"{name} cannot open the bot socket", False, "accepted")
    except WSError as e:
        check(f"{name} cannot open the bot socket ({want})", want in str(e), str(e))

bot = WS("127.0.0.1", PORT, "/api/v1/bot/ws?key=" + KEY, protocols=())
time.sleep(0.2)
out = alice_says("ping")
check("alice's MESSAGE to a WebSocket bot is accepted (202)", out == "ACKED ping 202", out)
ev = event(bot)
check("the bot gets the event on its socket", ev.get("type") == "message" and
      ev.get("user") == "alice" and ev.get("text") == "ping", ev)
bot.send(1, json.dumps({"op": "send", "to": "alice", "text": "pong, red or blue?",
                        "choices": ["red", "blue"], "context": "colour-7", "ref": 1}))
r = event(bot)
check("the bot's answer is sent ({\"op\":\"sent\"})", r.get("op") == "sent" and r.get("ref") == 1, r)
check("alice gets the answer with its choices from sip:wsbot@localhost",
      alice_got("FROM sip:wsbot@localhost pong, red or blue?\\n1. red\\n2. blue"), "")
alice_says("Blue")
ev = event(bot)
check("alice's reply reaches the bot with reply_to (context) and the choice",
      ev.get("choice") == "blue" and ev.get("reply_to", {}).get("context") == "colour-7", ev)
for bad, name in (({"op": "send", "to": "ghost", "text": "x"}, "an unknown user"),
                  ({"op": "send", "to": "alice"}, "no text"),
                  ({"op": "jump"}, "an unknown op"),
                  ({"op": "send", "to": "alice", "text": "x", "extra": 1}, "an unknown field")):
    bot.send(1, json.dumps(bad))
    r = event(bot)
    check(f"{name}: an error on the socket", r.get("op") == "error", r)
# presence: alice allows the bot, bob does not (pending)
bot.send(1, json.dumps({"op": "watch", "user": "alice"}))
got = [event(bot), event(bot)]
check("the bot watches alice (she allows it)", got[0].get("op") == "watching", got)
check("  and sees her presence: open (a registered device)",
      got[1].get("op") == "presence" and got[1].get("user") == "alice" and got[1].get("open") is True,
      got)
bot.send(1, json.dumps({"op": "watch", "user": "bob"}))
r = event(bot)
check("the bot may ask to watch bob", r.get("op") == "watching", r)
try:
    r = event_timeout = None
    bot.sock.settimeout(1)
    op, data = bot.recv(1)
    check("  but sees nothing of bob, who has not allowed it", False, data)
except (OSError, WSError):
    check("  but sees nothing of bob, who has not allowed it", True)
bot.send(1, json.dumps({"op": "unwatch", "user": "alice"}))
r = event(bot)
check("unwatch", r.get("op") == "unwatched", r)
bot.send(1, "{nope")
check("bad JSON: an error on the socket", event(bot).get("op") == "error")
bot.close()
time.sleep(0.3)
out = alice_says("anyone?")
check("once the bot's socket is closed (and it has no webhook): 480", "480" in out, out)
sys.exit(1 if failed else 0)

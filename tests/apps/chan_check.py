#!/usr/bin/env python3
"""Channel checks on the wire (issue 9 item 4), driven by tests/apps/channels_test.sh.

chan_check.py HTTP_PORT  (keys in the environment: PUB_KEY, SUB_KEY, NOPE_KEY)
Prints "PASS name" or "FAIL name: detail" per check. Uses tests/http/wsclient.py's
WebSocket client (standard library only).
"""
import base64, http.client, json, os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from wsclient import WS, WSError  # noqa: E402

PORT = int(sys.argv[1])
PUB, SUB, NOPE = os.environ["PUB_KEY"], os.environ["SUB_KEY"], os.environ["NOPE_KEY"]
failed = 0


def check(name, cond, detail=""):
    global failed
    if cond:
        print("PASS " + name, flush=True)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, detail), flush=True)


def basic(user, pw="secret"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def connect(headers=None, query=""):
    return WS("127.0.0.1", PORT, "/api/v1/channels/ws" + query, protocols=(), headers=headers)


def jrecv(ws, timeout=5):
    while True:
        op, data = ws.recv(timeout)
        if op == 1:
            return json.loads(data)
        if op == 8:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            return {"op": "_closed", "code": code, "reason": data[2:].decode(errors="replace")}


def req(ws, **kw):
    ws.send(1, json.dumps(kw))
    return jrecv(ws)


def publish(key, channel, body, raw=False):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    data = body if raw else json.dumps(body)
    c.request("POST", f"/api/v1/channels/{channel}/publish", data,
              {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, r.read().decode()
    c.close()
    return out


# subscribers: an app, two users; refused: anonymous, a user outside the group, an app
# without the channels scope, a wrong key
app = connect({"Authorization": "Bearer " + SUB})
alice = connect(basic("alice"))
bob = connect(basic("bob"))
for name, ws in (("app", app), ("alice", alice), ("bob", bob)):
    r = req(ws, op="subscribe", channel="news", ref=name)
    check(f"{name} subscribes to news", r.get("op") == "subscribed" and r.get("ref") == name, r)
# a browser: log in (POST /api/v1/login) and subscribe with ?token=
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
c.request("POST", "/api/v1/login", json.dumps({"user": "carol", "password": "secret"}),
          {"Content-Type": "application/json"})
resp = c.getresponse()
token = json.loads(resp.read()).get("token", "") if resp.status == 200 else ""
c.close()
try:
    browser = connect(query="?token=" + token)
    r = req(browser, op="subscribe", channel="news")
    check("a browser user with a login token subscribes (rule users)", r.get("op") == "subscribed", r)
    browser.close()
except WSError as e:
    check("a browser user with a login token subscribes (rule users)", False, str(e))
try:
    connect(query="?token=forged.token")
    check("a forged token cannot open the socket", False, "accepted")
except WSError as e:
    check("a forged token cannot open the socket (401)", "401" in str(e), str(e))
anon = connect()
r = req(anon, op="subscribe", channel="news")
check("an anonymous subscriber is refused on news", r.get("op") == "error" and
      "not allowed" in r.get("error", ""), r)
r = req(anon, op="subscribe", channel="lobby")
check("anyone may subscribe to a channel whose rule is 'any'", r.get("op") == "subscribed", r)
r = req(bob, op="subscribe", channel="staff")
check("bob (not in group staff) is refused on staff", r.get("op") == "error", r)
r = req(alice, op="subscribe", channel="staff")
check("alice (in group staff) subscribes to staff", r.get("op") == "subscribed", r)
r = req(alice, op="subscribe", channel="nosuch")
check("an unknown channel: error", r.get("error") == "no such channel", r)
r = req(alice, op="dance", channel="news")
check("an unknown op: error", r.get("op") == "error", r)
alice.send(1, "{not json")
r = jrecv(alice)
check("bad JSON on the socket: error, connection kept", r.get("op") == "error", r)
for hdr, want, name in (({"Authorization": "Bearer " + NOPE}, 403, "an app without the channels scope"),
                        ({"Authorization": "Bearer nonsense"}, 401, "a wrong key"),
                        (basic("alice", "wrong"), 401, "a wrong password")):
    try:
        connect(hdr)
        check(f"{name} cannot open the socket", False, "upgrade accepted")
    except WSError as e:
        check(f"{name} cannot open the socket ({want})", f"{want}" in str(e), str(e))

# order kept, everyone allowed gets everything
N = 50
codes = [publish(PUB, "news", {"data": {"n": i}}) for i in range(1, N + 1)]
check("50 publishes answered 200", all(c == 200 for c, _ in codes), codes[:2])
check("the publish answer counts 3 subscribers", json.loads(codes[0][1]).get("subscribers") == 3,
      codes[0])
for name, ws in (("app", app), ("alice", alice), ("bob", bob)):
    got = [jrecv(ws) for _ in range(N)]
    seqs = [m.get("seq") for m in got]
    data = [m.get("data", {}).get("n") for m in got]
    check(f"{name} gets the 50 messages in order", seqs == list(range(1, N + 1)) and
          data == list(range(1, N + 1)) and all(m.get("from") == "app:pub" for m in got), got[:2])
anon.sock.settimeout(0.5)
try:
    r = jrecv(anon, 0.5)
    check("the refused subscriber gets nothing from news", False, r)
except (socket.timeout, TimeoutError):
    check("the refused subscriber gets nothing from news", True)

# publishing rules and errors
c, b = publish(SUB, "news", {"data": 1})
check("an app not allowed to publish on news: 403", c == 403, (c, b))
c, b = publish(PUB, "nosuch", {"data": 1})
check("publish on an unknown channel: 404", c == 404, (c, b))
c, b = publish(PUB, "news", "{bad", raw=True)
check("publish with bad JSON: 400", c == 400 and "bad JSON" in b, (c, b))
c, b = publish(PUB, "news", {"data": 1, "x": 2})
check("publish with an unknown field: 400", c == 400 and "unknown field" in b, (c, b))
c, b = publish(PUB, "news", {"data": "x" * 70000})
check("publish over apps.max_request_body: 413", c == 413, (c, b))
c, b = publish(NOPE, "news", {"data": 1})
check("publish with a key without the channels scope: 403", c == 403, (c, b))
r = req(alice, op="publish", channel="staff", data="hello staff")
check("alice (group staff) publishes on staff over the socket", r.get("op") == "published", r)
m = jrecv(alice)
check("  and gets it back as a subscriber", m.get("data") == "hello staff" and
      m.get("from") == "user:alice", m)
r = req(bob, op="publish", channel="staff", data="intruder")
check("bob may not publish on staff", r.get("op") == "error", r)
r = req(bob, op="unsubscribe", channel="news")
check("bob unsubscribes", r.get("op") == "unsubscribed", r)
publish(PUB, "news", {"data": "after"})
check("after unsubscribing bob gets nothing more",
      jrecv(app).get("data") == "after" and jrecv(alice).get("data") == "after", "")
bob.sock.settimeout(0.5)
try:
    r = jrecv(bob, 0.5)
    check("  (bob silent)", False, r)
except (socket.timeout, TimeoutError):
    check("  (bob silent)", True)

# a slow subscriber: it never reads; the others keep getting everything, in order
slow = connect({"Authorization": "Bearer " + SUB})
req(slow, op="subscribe", channel="news")
big = "y" * 60000
M = 400  # 24 MB: more than the kernel's socket buffers plus the 4 MiB write queue hold
t0 = time.time()
fast_got = {"app": 0, "alice": 0}
last_seq = {"app": 0, "alice": 0}
in_order = True
for i in range(M):
    c, _ = publish(PUB, "news", {"data": big})
    if c != 200:
        break
    for name, ws in (("app", app), ("alice", alice)):
        m = jrecv(ws)
        fast_got[name] += 1
        if m.get("seq") != last_seq[name] + 1 and last_seq[name]:
            in_order = False
        last_seq[name] = m.get("seq")
elapsed = time.time() - t0
check("with a subscriber that does not read, the others get every message in order",
      fast_got == {"app": M, "alice": M} and in_order, (fast_got, in_order))
check("  and publishing does not wait for it (%d publishes in %.1f s)" % (M, elapsed), elapsed < 60)
# it is told why: after what the server had queued for it, a close frame 1008 with a reason
closing = None
try:
    while True:
        m = jrecv(slow, 5)
        if m.get("op") == "_closed":
            closing = m
            break
except Exception:
    pass
check("the subscriber that does not read is closed with 1008 and a reason",
      closing is not None and closing["code"] == 1008 and "too slow" in closing["reason"],
      closing)
slow.sock.close()
for ws in (app, alice, bob, anon):
    ws.close()
sys.exit(1 if failed else 0)

#!/usr/bin/env python3
"""presence_test.py SERVER RTCCTL_CMD... — the presence agent on the wire (driven by
presence_test.sh, which starts rtcd and creates the users alice, bob, carol, dave, erin,
frank, all with password "pw", and the rules alice: bob allow, carol block, dave
polite-block, frank allow). Prints "ok - ..." / "FAIL - ..." and a summary; exits 1 on any
failure."""
import re, subprocess, sys, time

from presua import PUA, hdr, body, status, pidf

SERVER = sys.argv[1]
RTCCTL = sys.argv[2:]
PASSED = FAILED = 0


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"ok   - {name}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL - {name}: {detail}"[:600], flush=True)


def state_of(n):
    return hdr(n, "Subscription-State") if n else None


def basic(n):
    return re.findall(r"<basic>(\w+)</basic>", body(n)) if n else []


def rtcctl(*args):
    return subprocess.run(RTCCTL + list(args), capture_output=True, text=True).returncode


def main():
    a1 = PUA(SERVER, "alice", "pw")
    a2 = PUA(SERVER, "alice", "pw")
    bob = PUA(SERVER, "bob", "pw")

    # ---- 1. subscription: initial state from the registration ----
    check("alice registers a device", a1.register() == 200)
    r, d = bob.subscribe("alice", expires=600)
    check("SUBSCRIBE presence → 200 with To tag, Expires, Contact",
          r is not None and status(r) == 200 and ";tag=" in (hdr(r, "To") or "")
          and hdr(r, "Expires") == "600" and hdr(r, "Contact"), r)
    n = bob.wait_notify()
    check("immediate NOTIFY: Event presence, active;expires, PIDF open (registered device)",
          n is not None and hdr(n, "Event") == "presence"
          and re.match(r"active;expires=(59\d|600)$", state_of(n) or "")
          and hdr(n, "Content-Type") == "application/pidf+xml" and basic(n) == ["open"]
          and 'entity="sip:alice@localhost"' in body(n), n)
    check("NOTIFY is in the dialog (Call-ID, tags) with a Contact",
          n is not None and hdr(n, "Call-ID") == d["cid"] and f"tag={d['ftag']}" in hdr(n, "To")
          and hdr(n, "Contact"), n)

    # ---- registration changes ----
    check("alice unregisters", a1.register(0) == 200)
    n = bob.wait_notify()
    check("NOTIFY after unregistering: closed (no device, no publication)",
          n is not None and basic(n) == ["closed"], n)

    # ---- 2. PUBLISH ----
    r = a1.publish(pidf("alice", "open", "t1", note="In a meeting"), expires=300)
    etag = hdr(r, "SIP-ETag") if r else None
    check("PUBLISH initial → 200 with SIP-ETag and Expires", r is not None and status(r) == 200
          and etag and hdr(r, "Expires") == "300", r)
    n = bob.wait_notify()
    check("NOTIFY after PUBLISH carries the published tuple and note",
          n is not None and basic(n) == ["open"] and "In a meeting" in body(n)
          and 'id="t1"' in body(n), n)
    r = a1.publish(None, etag=etag, expires=300)
    etag2 = hdr(r, "SIP-ETag") if r else None
    check("PUBLISH refresh (no body, SIP-If-Match) → 200 with a new SIP-ETag",
          r is not None and status(r) == 200 and etag2 and etag2 != etag, r)
    check("a refresh sends no NOTIFY", bob.wait_notify(1.0) is None)
    r = a1.publish(None, etag=etag, expires=300)
    check("PUBLISH with a stale SIP-If-Match → 412", r is not None and status(r) == 412, r)
    r = a1.publish(pidf("alice", "closed", "t1"), etag=etag2)
    etag3 = hdr(r, "SIP-ETag") if r else None
    check("PUBLISH modify → 200", r is not None and status(r) == 200 and etag3, r)
    n = bob.wait_notify()
    check("NOTIFY after modify: closed", n is not None and basic(n) == ["closed"], n)
    r = a1.publish('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@localhost">'
                   '<tuple><status><basic>open</basic></status></tuple></presence>')
    check("PUBLISH with a bad PIDF → 400 saying what", r is not None and status(r) == 400
          and "tuple" in r.split("\r\n")[0], r and r.split("\r\n")[0])
    r = a1.publish("<presence", ctype="application/pidf+xml")
    check("PUBLISH with broken XML → 400", r is not None and status(r) == 400
          and "XML" in r.split("\r\n")[0], r and r.split("\r\n")[0])
    r = a1.publish("hello", ctype="text/plain")
    check("PUBLISH with another Content-Type → 415 with Accept", r is not None and status(r) == 415
          and "application/pidf+xml" in (hdr(r, "Accept") or ""), r)
    r = bob.publish(pidf("bob"), ctype="application/pidf+xml")
    ok = r is not None and status(r) == 200
    r2, _ = bob.transact("PUBLISH", "sip:alice@localhost", "<sip:alice@localhost>",
                         "Event: presence\r\n", "application/pidf+xml", pidf("alice"))
    check("PUBLISH for someone else's presence → 403", ok and r2 is not None and status(r2) == 403, r2)

    # ---- two devices aggregated ----
    r = a2.publish(pidf("alice", "open", "t2", note="on the phone"))
    etag_b = hdr(r, "SIP-ETag") if r else None
    n = bob.wait_notify()
    check("two publications aggregated: tuples t1 closed and t2 open",
          n is not None and 'id="t1"' in body(n) and 'id="t2"' in body(n)
          and sorted(basic(n)) == ["closed", "open"], n)
    r = a2.publish(None, etag=etag_b, expires=0)
    check("PUBLISH remove (Expires: 0) → 200", r is not None and status(r) == 200, r)
    n = bob.wait_notify()
    check("NOTIFY after remove: only t1 left", n is not None and 'id="t2"' not in body(n)
          and 'id="t1"' in body(n), n)
    check("a device registers while another publishes", a2.register() == 200)
    n = bob.wait_notify(1.5)
    check("a publication speaks for the user: the registration adds no tuple",
          n is None or (basic(n) == ["closed"] and 'id="reg-' not in body(n)), n)

    # ---- 1. errors ----
    r, _ = bob.subscribe("alice", event="dialog")
    check("SUBSCRIBE with another event → 489 with Allow-Events", r is not None and status(r) == 489
          and "presence" in (hdr(r, "Allow-Events") or ""), r)
    r, _ = bob.subscribe("alice", expires=1)
    check("SUBSCRIBE below the minimum → 423 with Min-Expires", r is not None and status(r) == 423
          and hdr(r, "Min-Expires") == "2", r)
    r, _ = bob.subscribe("alice", accept="text/plain")
    check("SUBSCRIBE accepting no PIDF → 406", r is not None and status(r) == 406, r)
    r, _ = bob.subscribe("nosuchuser")
    check("SUBSCRIBE to an unknown user → 404", r is not None and status(r) == 404, r)

    # ---- refresh and unsubscribe ----
    r = bob.resubscribe(d, 120)
    check("refresh in the dialog → 200 Expires 120", r is not None and status(r) == 200
          and hdr(r, "Expires") == "120", r)
    n = bob.wait_notify()
    check("refresh → NOTIFY active;expires<=120", n is not None and
          re.match(r"active;expires=(1[01]\d|120)$", state_of(n) or ""), n)
    r = bob.resubscribe({**d, "cid": "nope"}, 120)
    check("SUBSCRIBE in an unknown dialog → 481", r is not None and status(r) == 481, r)
    r = bob.resubscribe(d, 0)
    check("unsubscribe (Expires: 0) → 200", r is not None and status(r) == 200, r)
    n = bob.wait_notify()
    check("unsubscribe → NOTIFY terminated;reason=timeout",
          n is not None and state_of(n) == "terminated;reason=timeout", n)
    r = bob.resubscribe(d, 120)
    check("the ended subscription is gone: 481", r is not None and status(r) == 481, r)

    # ---- expiry (the test server has presence.min_expires = 2) ----
    r, d2 = bob.subscribe("alice", expires=2)
    n = bob.wait_notify()
    n2 = bob.wait_notify(5)
    check("a subscription that is not refreshed ends: NOTIFY terminated;reason=timeout",
          r is not None and status(r) == 200 and n is not None and n2 is not None
          and state_of(n2) == "terminated;reason=timeout", n2)

    r, _ = bob.subscribe("alice", expires=0)
    n = bob.wait_notify()
    check("a fetch (Expires: 0): 200 and one NOTIFY terminated;reason=timeout with the state",
          r is not None and status(r) == 200 and n is not None
          and state_of(n) == "terminated;reason=timeout" and len(basic(n)) > 0, n)

    # ---- 4. authorization ----
    carol = PUA(SERVER, "carol", "pw")
    r, _ = carol.subscribe("alice")
    check("blocked watcher → 403", r is not None and status(r) == 403, r)
    dave = PUA(SERVER, "dave", "pw")
    r, _ = dave.subscribe("alice")
    n = dave.wait_notify()
    check("polite-blocked watcher: 200 and active with a closed document",
          r is not None and status(r) == 200 and n is not None
          and (state_of(n) or "").startswith("active") and basic(n) == ["closed"], n)
    check("polite-blocked: alice is open for others (registered)", a1.register() == 200)
    check("polite-blocked: no NOTIFY of the change", dave.wait_notify(1.0) is None)

    # winfo: alice watches her watchers
    aw = PUA(SERVER, "alice", "pw")
    r, dw = aw.subscribe("alice", event="presence.winfo")
    n = aw.wait_notify()
    check("watcher info: SUBSCRIBE → 200, NOTIFY application/watcherinfo+xml listing dave",
          r is not None and status(r) == 200 and n is not None
          and hdr(n, "Content-Type") == "application/watcherinfo+xml"
          and hdr(n, "Event") == "presence.winfo" and "sip:dave@localhost" in body(n)
          and 'state="full"' in body(n), n)
    r, _ = bob.subscribe("alice", event="presence.winfo")
    check("watcher info of someone else → 403", r is not None and status(r) == 403, r)

    erin = PUA(SERVER, "erin", "pw")
    r, de = erin.subscribe("alice")
    n = erin.wait_notify()
    check("unknown watcher: pending, NOTIFY without a body",
          r is not None and status(r) == 200 and n is not None
          and (state_of(n) or "").startswith("pending") and body(n) == "", n)
    n = aw.wait_notify(pred=lambda x: "erin" in body(x))
    check("watcher info: erin appears pending", n is not None and
          re.search(r'status="pending"[^>]*>sip:erin@localhost<', body(n)), n)
    check("rtcctl presence-rule set alice erin allow", rtcctl("presence-rule", "set", "alice", "erin", "allow") == 0)
    n = erin.wait_notify(4)
    check("rule changed while subscribed: NOTIFY active with the state",
          n is not None and (state_of(n) or "").startswith("active") and len(basic(n)) > 0, n)
    n = aw.wait_notify(4, pred=lambda x: re.search(r'status="active"[^>]*>sip:erin@localhost<', body(x)))
    check("watcher info: erin now active", n is not None, n)
    check("rtcctl presence-rule set alice erin block", rtcctl("presence-rule", "set", "alice", "erin", "block") == 0)
    n = erin.wait_notify(4)
    check("blocked while subscribed: NOTIFY terminated;reason=rejected",
          n is not None and state_of(n) == "terminated;reason=rejected", n)
    check("rtcctl presence-rule list shows the rules",
          subprocess.run(RTCCTL + ["presence-rule", "list", "alice"], capture_output=True,
                         text=True).stdout.count("\n") >= 5)

    # ---- the watcher is gone: 481 to a NOTIFY ends the subscription ----
    frank = PUA(SERVER, "frank", "pw")
    r, df = frank.subscribe("alice")
    n = frank.wait_notify()
    check("frank subscribed", r is not None and status(r) == 200 and n is not None, r)
    frank.notify_status = 481
    r = a2.publish(pidf("alice", "open", "t9"))
    n = frank.wait_notify()
    check("frank answers the next NOTIFY with 481", n is not None, n)
    frank.notify_status = 200
    r = a2.publish(pidf("alice", "closed", "t9"), etag=hdr(r, "SIP-ETag"))
    check("after a 481 no NOTIFY is sent any more", frank.wait_notify(1.5) is None)
    r = frank.resubscribe(df, 120)
    check("and its dialog is gone (481)", r is not None and status(r) == 481, r)

    # ---- a publication that is not refreshed expires (presence.publish_min_expires = 1) ----
    r, dx = bob.subscribe("alice")
    bob.wait_notify()
    r = a2.publish(pidf("alice", "open", "t20", note="short"), expires=2)
    n = bob.wait_notify(pred=lambda x: 'id="t20"' in body(x))
    check("a short publication is seen", r is not None and status(r) == 200 and n is not None, r)
    n = bob.wait_notify(5, pred=lambda x: 'id="t20"' not in body(x))
    check("... and goes when it expires (NOTIFY without it)", n is not None, n)
    bob.resubscribe(dx, 0)

    # ---- a TCP watcher: NOTIFY on its connection; closing it ends the subscription ----
    bt = PUA(SERVER, "bob", "pw", tcp=True)
    r, dt = bt.subscribe("alice")
    n = bt.wait_notify()
    check("TCP watcher: NOTIFY arrives on its connection", r is not None and status(r) == 200
          and n is not None and "SIP/2.0/TCP" in n, n)
    bt.sock.close()
    time.sleep(0.5)
    check("alice changes after the TCP watcher left",
          a2.publish(pidf("alice", "open", "t10")) is not None)
    print(f"{PASSED} passed, {FAILED} failed", flush=True)
    return 1 if FAILED or not PASSED else 0


if __name__ == "__main__":
    sys.exit(main())

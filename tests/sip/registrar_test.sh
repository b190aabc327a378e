#!/usr/bin/env bash
# Registrar and authentication behaviour on the wire (RFC 3261 §10.3, RFC 7616):
# unknown users answered like known ones, 423 with Min-Expires, expiry capped,
# throttling after repeated failures, registrations kept across a restart.
. "$(dirname "$0")/../lib.sh"
UA="python3 $(dirname "$0")/sipua.py"
port=15060
srv=127.0.0.1:$port
for u in alice bob carol; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null
done
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18000
      --set turn.listen=udp:127.0.0.1:13400 --set auth.max_failures=3
      --set sip.max_expires=7200 --set "auth.algorithms=SHA-256, MD5")
start_rtcd rtcd "${args[@]}" || { not_ok "rtcd starts"; finish; }

out=$($UA register --server $srv --user nobody --password x --port 15071)
expect_eq "an unknown user gets 401 again, as a wrong password does" "STATUS 401" "$(head -1 <<<"$out")"
out=$($UA register --server $srv --user carol --password wrong --port 15071)
expect_eq "a known user with a wrong password: 401" "STATUS 401" "$(head -1 <<<"$out")"

out=$($UA register --server $srv --user alice --password secret --port 15071 --alg SHA-256)
expect_eq "digest SHA-256 (RFC 8760) when offered" "STATUS 200" "$(head -1 <<<"$out")"
out=$($UA register --server $srv --user alice --password secret --port 15071 --expires 10)
expect_eq "too short an expiry: 423" "STATUS 423" "$(head -1 <<<"$out")"
expect_match "423 names Min-Expires" '^Min-Expires: 60' "$(grep -i min-expires <<<"$out")"
out=$($UA register --server $srv --user alice --password secret --port 15071 --expires 99999)
expect_eq "a long expiry is accepted" "STATUS 200" "$(head -1 <<<"$out")"
expect_match "and shortened to sip.max_expires" 'expires=7200' "$(grep -i '^contact' <<<"$out")"

# registrations survive a restart: bob registers, rtcd restarts, alice's MESSAGE reaches bob
out=$($UA register --server $srv --user bob --password secret --port 15073 --expires 600)
expect_eq "bob registers" "STATUS 200" "$(head -1 <<<"$out")"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
expect_match "the bindings are saved" 'registration\(s\) saved' "$(cat "$T/rtcd.log")"
start_rtcd rtcd2 "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd restarts"; finish; }
expect_match "and restored" '[1-9][0-9]* registration\(s\) restored' "$(cat "$T/rtcd2.log")"
$UA listen --server $srv --user bob --password secret --port 15073 --seconds 4 --no-register \
    >"$T/bob.txt" 2>&1 &
listener=$!
track $listener
sleep 0.3
out=$($UA send --server $srv --user alice --password secret --to bob --count 1 --prefix hello)
expect_eq "alice's MESSAGE is accepted by bob's device" "ACKED hello-1 200" "$out"
wait $listener
expect_eq "bob's device got it through the restored binding" "GOT hello-1" "$(grep GOT "$T/bob.txt")"
# every MESSAGE is archived (group commit: within a fraction of a second)
sleep 0.3
out=$("$RTCCTL" --set server.data_dir="$T/rtcd" --json archive search hello-1)
expect_match "the MESSAGE is in the archive, from alice to bob" '"alice".*"bob"|"bob".*"alice"' "$(tr -d '\n ' <<<"$out")"

# throttling: carol fails 3 times, then even the right password is refused for a while
# three failures (auth.max_failures) within the window
for i in 1 2 3; do $UA register --server $srv --user carol --password wrong --port 15074 >/dev/null; done
out=$($UA register --server $srv --user carol --password secret --port 15074)
expect_eq "after repeated failures: 403" "STATUS 403" "$(head -1 <<<"$out")"
expect_match "with Retry-After" '^Retry-After: [0-9]+' "$(grep -i retry-after <<<"$out")"
expect_match "the failures are logged" "failed authentication of 'carol'" "$(cat "$T/rtcd.log")"

# REGISTER is answered without a transaction (sip.stateless_register): a retransmission
# (same bytes) is processed again and gets the same answer; a lower CSeq still gets 500
"$RTCCTL" --set server.data_dir="$T/nochallenge" user add bob --password secret >/dev/null
start_rtcd nochallenge --set "sip.listen=udp:127.0.0.1:15090" --set http.listen= \
    --set turn.listen= --set auth.challenge=none || { not_ok "rtcd (auth none) starts"; finish; }
out=$(python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 15091))
s.settimeout(3)
def reg(cseq, branch):
    return ("REGISTER sip:localhost SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:15091;branch=z9hG4bK{branch};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@localhost>;tag=rt1\r\n"
            "To: <sip:alice@localhost>\r\nCall-ID: retrans-1@127.0.0.1\r\n"
            f"CSeq: {cseq} REGISTER\r\nContact: <sip:alice@127.0.0.1:15091>\r\n"
            "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode()
def ask(data):
    s.sendto(data, ("127.0.0.1", 15090))
    r = s.recv(65535).decode(errors="replace")
    tag = [l for l in r.split("\r\n") if l.lower().startswith("to:")][0].split("tag=")[-1]
    return r.split("\r\n")[0], tag, r.count("Contact:")
first = ask(reg(7, "aa1"))
again = ask(reg(7, "aa1"))
print(first[0], "|", again[0], "|", "same-tag" if first[1] == again[1] else "other-tag",
      "|", again[2], "|", ask(reg(6, "aa2"))[0])
PY
)
IFS='|' read -r st1 st2 tags ncontact lower <<<"$out"
expect_eq "a REGISTER is answered 200" "SIP/2.0 200 OK" "$(echo $st1)"
expect_eq "its retransmission gets 200 again" "SIP/2.0 200 OK" "$(echo $st2)"
expect_eq "with the same To tag" "same-tag" "$(echo $tags)"
expect_eq "and still one binding" "1" "$(echo $ncontact)"
expect_match "a lower CSeq from the same Call-ID: 500" "^SIP/2.0 500" "$(echo $lower)"

# A proxied MESSAGE, once answered, is absorbed by its transactions: a retransmission gets
# the final again and is not forwarded again (also after the proxy has let go of it); a
# forked MESSAGE's late second answer goes nowhere.
out=$(python3 - <<'PY'
import socket, time
def sock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(1.5)
    return s
srv = ("127.0.0.1", 15090)
caller, dev1, dev2 = sock(15094), sock(15092), sock(15093)
def reg(s, port, cid):
    s.sendto(("REGISTER sip:localhost SIP/2.0\r\n"
              f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port};rport\r\n"
              "Max-Forwards: 70\r\nFrom: <sip:bob@localhost>;tag=b1\r\n"
              f"To: <sip:bob@localhost>\r\nCall-ID: {cid}\r\n"
              f"CSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:{port}>\r\n"
              "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode(), srv)
    return s.recv(65535).decode().split("\r\n")[0]
msg = ("MESSAGE sip:bob@localhost SIP/2.0\r\n"
       "Via: SIP/2.0/UDP 127.0.0.1:15094;branch=z9hG4bKmsgabs1;rport\r\n"
       "Max-Forwards: 70\r\nFrom: <sip:alice@localhost>;tag=a1\r\n"
       "To: <sip:bob@localhost>\r\nCall-ID: absorb-1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\n"
       "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi").encode()
def answer(s, req, status):
    lines = req.split("\r\n")
    keep = [l for l in lines[1:] if l.split(":")[0].lower() in ("via", "from", "call-id", "cseq")]
    to = [l for l in lines if l.lower().startswith("to:")][0]
    s.sendto((f"SIP/2.0 {status} X\r\n" + "\r\n".join(keep) + f"\r\n{to};tag=d{status}\r\n"
              "Content-Length: 0\r\n\r\n").encode(), srv)
def got(s):
    try:
        return s.recv(65535).decode()
    except socket.timeout:
        return ""
res = [reg(dev1, 15092, "absorb-r1"), reg(dev2, 15093, "absorb-r2")]
caller.sendto(msg, srv)
r1, r2 = got(dev1), got(dev2)
answer(dev1, r1, 200)
res.append(got(caller).split("\r\n")[0])
answer(dev2, r2, 486)
late = got(caller)
res.append("late-none" if not late else "late:" + late.split("\r\n")[0])
for wait in (0, 1.0):
    time.sleep(wait)
    caller.sendto(msg, srv)
    res.append(got(caller).split("\r\n")[0])
dev1.settimeout(0.5); dev2.settimeout(0.5)
res.append("forwarded-again" if got(dev1) or got(dev2) else "not-forwarded")
print("|".join(res))
PY
)
IFS='|' read -r rg1 rg2 first late again1 again2 fwd <<<"$out"
expect_eq "two devices register" "SIP/2.0 200 OK|SIP/2.0 200 OK" "$rg1|$rg2"
expect_eq "the forked MESSAGE's first 200 goes upstream" "SIP/2.0 200 X" "$first"
expect_eq "the other device's later 486 does not" "late-none" "$late"
expect_eq "a retransmission gets the 200 again" "SIP/2.0 200 X" "$again1"
expect_eq "and a second after, too" "SIP/2.0 200 X" "$again2"
expect_eq "neither is forwarded to the devices again" "not-forwarded" "$fwd"

finish

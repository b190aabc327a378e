#!/usr/bin/env bash
# Call features on the wire (docs/call-features.md), rules set with rtcctl while
# rtcd runs: unconditional forwarding (the user's phone does not ring), busy
# (486 from every device → the busy target), no answer after N s (the ringing
# branch is cancelled, then the target rings), not registered, do-not-disturb
# (486, or the busy target), History-Info on the forwarded INVITE, and a
# forwarding loop that ends.
. "$(dirname "$0")/../lib.sh"
UA="python3 $(dirname "$0")/sipua.py"
port=15720
srv=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
for u in alice bob carol; do ctl user add $u --password secret >/dev/null; done
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:15797
      --set turn.listen=udp:127.0.0.1:15796 --set server.secret=features-call-secret)
start_rtcd rtcd "${args[@]}" || { not_ok "rtcd starts"; finish; }

LISTENERS=()
# dev USER FILE PORT SECONDS MODE — a device answering INVITEs (busy|ring|answer)
dev() {
    $UA listen --server $srv --user "$1" --password secret --port "$3" --seconds "$4" \
        --invite "$5" --show History-Info >"$T/$2" 2>&1 &
    track $!
    LISTENERS+=($!)
    local i
    for i in $(seq 1 50); do grep -q REGISTERED "$T/$2" 2>/dev/null && break; sleep 0.1; done
}
done_devs() { local p; for p in "${LISTENERS[@]}"; do wait "$p" 2>/dev/null; done; LISTENERS=(); }
call() { $UA call --server $srv --user alice --password secret --to "$1" --seconds "${2:-8}"; }
live() { sleep 0.8; } # rtcd reloads rules within a second

# ---- unconditional ----
ctl forward set bob --unconditional carol >/dev/null
live
dev bob b1 15731 3 answer
dev carol c1 15732 3 answer
out=$(call bob)
done_devs
expect_match "unconditional: the call is answered (by carol)" "FINAL 200" "$out"
grep -q '^INVITE sip:carol@' "$T/c1" && ok "unconditional: carol rings" ||
    not_ok "unconditional: carol rings" "$(cat "$T/c1")"
grep -q '^INVITE' "$T/b1" && not_ok "unconditional: bob does not ring" || ok "unconditional: bob does not ring"
hi=$(grep '^H History-Info' "$T/c1" | head -1)
expect_match "History-Info names bob (index 1) and carol with cause 302" \
    'sip:bob@localhost>;index=1, <sip:carol@localhost;cause=302>;index=1\.1' "$hi"

# ---- a foreign target (another server, by address) ----
ctl forward set bob --unconditional sip:vm@127.0.0.1:15742 >/dev/null
live
$UA listen --server $srv --user vm --password x --port 15742 --seconds 3 --no-register \
    --invite answer --show History-Info >"$T/vm" 2>&1 &
vmpid=$!
track $vmpid
sleep 0.3
out=$(call bob)
wait $vmpid 2>/dev/null
expect_match "unconditional to a foreign URI: answered there" "FINAL 200" "$out"
grep -q '^INVITE sip:vm@127.0.0.1:15742' "$T/vm" && ok "the foreign target gets the INVITE" ||
    not_ok "the foreign target gets the INVITE" "$(cat "$T/vm")"
ctl forward clear bob >/dev/null

# ---- busy ----
ctl forward clear bob >/dev/null
ctl forward set bob --busy carol >/dev/null
live
dev bob b2 15733 3 busy
dev carol c2 15734 3 answer
out=$(call bob)
done_devs
expect_match "busy: the call is answered by the busy target" "FINAL 200" "$out"
grep -q '^INVITE sip:bob@\|^INVITE sip:bob' "$T/b2" && ok "busy: bob rang first" || not_ok "busy: bob rang first" "$(cat "$T/b2")"
expect_match "busy: carol's INVITE carries cause 486" 'cause=486' "$(grep '^H History-Info' "$T/c2")"
# without a rule, busy is busy
ctl forward clear bob >/dev/null
live
dev bob b3 15735 2 busy
out=$(call bob)
done_devs
expect_match "no rule: 486 reaches the caller" "FINAL 486" "$out"

# ---- no answer after 2 s ----
ctl forward set bob --no-answer carol --after 2 >/dev/null
live
dev bob b4 15736 6 ring
dev carol c4 15737 6 answer
t0=$(date +%s%N)
out=$(call bob 10)
t1=$(date +%s%N)
done_devs
expect_match "no answer: the call is answered by the target" "FINAL 200" "$out"
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -ge 1900 ] && ok "no answer: retargeted after the ring time ($ms ms)" ||
    not_ok "no answer: retargeted after the ring time" "$ms ms"
grep -q CANCELLED "$T/b4" && ok "no answer: bob's ringing branch is cancelled" ||
    not_ok "no answer: bob's ringing branch is cancelled" "$(cat "$T/b4")"
expect_match "no answer: cause 408" 'cause=408' "$(grep '^H History-Info' "$T/c4")"

# ---- not registered ----
ctl forward clear bob >/dev/null
out=$(call bob 3)
expect_match "no rule, no device: 480" "FINAL 480" "$out"
ctl forward set bob --not-registered carol >/dev/null
live
dev carol c5 15738 3 answer
out=$(call bob)
done_devs
expect_match "not registered: the call goes to the target" "FINAL 200" "$out"
expect_match "not registered: cause 404" 'cause=404' "$(grep '^H History-Info' "$T/c5")"

# ---- do not disturb ----
ctl forward clear bob >/dev/null
ctl dnd bob on >/dev/null
live
dev bob b6 15739 2 answer
out=$(call bob)
done_devs
expect_match "DND: 486 Busy Here" "FINAL 486" "$out"
grep -q '^INVITE' "$T/b6" && not_ok "DND: bob does not ring" || ok "DND: bob does not ring"
ctl forward set bob --busy carol >/dev/null
live
dev carol c7 15740 3 answer
out=$(call bob)
done_devs
expect_match "DND with a busy target: the target answers" "FINAL 200" "$out"
show=$(ctl forward show bob --json)
expect_match "forward show --json" '"dnd": true' "$show"
expect_match "forward show --json names the busy target" '"busy": "sip:carol@localhost"' "$show"
ctl dnd bob off >/dev/null
ctl forward clear bob >/dev/null

# ---- a loop between rules ends ----
ctl forward set bob --unconditional carol >/dev/null
ctl forward set carol --unconditional bob >/dev/null
live
t0=$(date +%s)
out=$(call bob 10)
t1=$(date +%s)
expect_match "a forwarding loop ends with a final answer" "FINAL (48[0-9]|5[0-9][0-9])" "$out"
[ $((t1 - t0)) -le 5 ] && ok "a forwarding loop ends quickly" || not_ok "a forwarding loop ends quickly"

# ---- usage ----
ctl forward set nosuch --busy carol >/dev/null 2>&1
expect_eq "forward set for an unknown user is refused" 1 $?
ctl forward set bob --busy "not a uri" >/dev/null 2>&1
expect_eq "forward set with a bad target is a usage error" 2 $?

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish

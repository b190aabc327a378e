#!/usr/bin/env bash
# With two workers, what comes back over UDP reaches the worker that owns its state
# (docs/sip-core.md, "Threads and ownership"; src/net/steer.c): responses by the tag in
# rtcd's branch, in-dialog requests by the tag in its Record-Route. Measured by
# rtcd_sip_handovers_total: the kernel's own choice (a hash of the peer's address) would
# hand over about half of them.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_scenario.sh"
UA="python3 $(dirname "$0")/sipua.py"
port=15060
srv=127.0.0.1:$port
for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null ||
        { not_ok "rtcctl user add $u"; finish; }
done
start_rtcd rtcd --set "sip.listen=udp:127.0.0.1:$port, udp:[::1]:$port" \
    --set server.workers=2 --set http.listen=tcp:127.0.0.1:18000 \
    --set turn.listen=udp:127.0.0.1:13400 || { not_ok "rtcd starts"; finish; }
expect_match "rtcd runs two workers" 'rtcd-w1' "$(cat /proc/"$RTCD_PID"/task/*/comm)"
if grep -q "not steered" "$T/rtcd.log"; then not_ok "the kernel takes the steering program" "$(grep "not steered" "$T/rtcd.log")"; else ok "the kernel takes the steering program"; fi

handovers() {
    curl -s http://127.0.0.1:18000/metrics | awk '$1 == "rtcd_sip_handovers_total" { print $2 }'
}

# bob has six devices (six source ports); each MESSAGE of alice's forks to all of them
listeners=()
for p in 15071 15072 15073 15074 15075 15076; do
    $UA listen --server $srv --user bob --password secret --port $p --seconds 6 \
        --show Via >"$T/bob-$p.txt" 2>&1 &
    listeners+=($!)
    track $!
done
sleep 1
before=$(handovers)
expect_match "the hand-over counter is exported" '^[0-9]+$' "$before"
for i in 1 2 3; do
    out=$($UA send --server $srv --user alice --password secret --to bob --prefix "m$i")
    expect_eq "alice's MESSAGE $i is answered 200" "ACKED m$i-1 200" "$out"
done
after=$(handovers)
for pid in "${listeners[@]}"; do wait "$pid"; done
expect_eq "every device got the three MESSAGEs" 18 "$(cat "$T"/bob-*.txt | grep -c '^GOT m')"
expect_match "the forwarded MESSAGE's branch names its worker" \
    'branch=z9hG4bKr[^;]*~rtcd~w(aa|ab)' "$(grep -ih 'via:' "$T"/bob-*.txt | head -1)"
expect_eq "18 answers from 6 addresses, none handed over" 0 $((after - before))

# calls over IPv6 (sipp): only the INVITE with credentials may be handed over (to its
# Call-ID's worker). The first INVITE is challenged where it arrived, without a
# transaction; the ACK for the 407 goes by its To tag to the same worker; the provisional
# and final answers, the ACK for the 200, the BYE and its answer are steered.
SIP_LOCAL_IP=::1
SIP_SERVER=$(sip_hostport ::1 $port)
before=$(handovers)
for i in 1 2 3 4; do
    sip_call_pair "call$i [u1 ::1]: alice calls bob" uas.xml uac_call.xml alice bob secret
done
after=$(handovers)
calls=$((after - before))
if [ "$calls" -le 4 ]; then
    ok "4 calls: $calls hand-over(s), at most one per INVITE"
else
    not_ok "4 calls: at most one hand-over each" "$calls hand-overs"
fi
expect_match "the callee saw a Record-Route with its worker's tag" \
    'Record-Route: <sip:\[::1\]:15060;transport=udp;lr;fl=[^;>]*;~rtcd~w(aa|ab)>' \
    "$(grep -h '^Record-Route' "$T"/call1-uas.msg | head -1)"

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish

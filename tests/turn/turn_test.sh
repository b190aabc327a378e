#!/usr/bin/env bash
# STUN/TURN on the wire: build/rtcd --only turn on 127.0.0.1, driven by coturn's
# client tools (turnutils_stunclient, turnutils_uclient with turnutils_peer) and
# a raw STUN probe (stun_probe.py) for what the tools do not show.
. "$(dirname "$0")/../lib.sh"
HERE=$(dirname "$0")
PROBE="python3 $HERE/stun_probe.py"
A=13400 B=13401 PEER=13410 PEER6=13411
SECRET=rest-secret-for-tests
for tool in turnutils_uclient turnutils_peer turnutils_stunclient; do
    command -v $tool >/dev/null || { not_ok "$tool installed (Debian coturn)"; finish; }
done

turnutils_peer -L 127.0.0.1 -p $PEER >"$T/peer.log" 2>&1 &
track $!
turnutils_peer -L ::1 -p $PEER6 >"$T/peer6.log" 2>&1 &
track $!

start_rtcd a --only turn --set server.workers=2 \
    --set turn.listen="udp:127.0.0.1:$A, tcp:127.0.0.1:$A, udp:[::1]:$A" \
    --set turn.relay_address="127.0.0.1, ::1" \
    --set turn.realm=example.org --set turn.rest_secret=$SECRET \
    --set turn.users="alice:wonderland, bob:builder, u1:pw1, u2:pw2, u3:pw3, u4:pw4, u5:pw5, u6:pw6, u7:pw7, erin:pw" \
    --set turn.allow_peers="127.0.0.0/8, ::1/128" \
    --set turn.relay_port_min=20000 --set turn.relay_port_max=20499 \
    --set turn.max_allocations_per_user=4 || { not_ok "rtcd starts"; finish; }
ok "rtcd --only turn starts"
A_PID=$RTCD_PID

# uclient NAME EXPECTED_MSGS ARGS... — runs a session, checks every packet came back.
uclient() {
    local name=$1 want=$2
    shift 2
    timeout 60 turnutils_uclient -p $A -n 20 -l 160 -z 5 -c "$@" 127.0.0.1 >"$T/uc.out" 2>&1
    local line
    line=$(grep -E "start_mclient: tot_send_msgs=" "$T/uc.out" | tail -1)
    expect_eq "$name" "tot_send_msgs=$want, tot_recv_msgs=$want" "$(echo "$line" | grep -oE 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+')"
}

# STUN Binding
out=$(timeout 5 turnutils_stunclient -p $A 127.0.0.1 2>&1)
expect_match "Binding over UDP (turnutils_stunclient)" "UDP reflexive addr: 127\.0\.0\.1:[0-9]+" "$out"
expect_match "Binding over TCP" "^mapped 127\.0\.0\.1:[0-9]+$" "$($PROBE tcp 127.0.0.1 $A binding 2>&1)"
expect_match "unknown comprehension-required attribute → 420" "^error 420 unknown 0x7f01$" \
    "$($PROBE udp 127.0.0.1 $A unknown 2>&1)"

# Relaying, long-term credentials (turn.users), channels and Send indications
uclient "long-term, UDP, ChannelData: 2 clients × 20 relayed and back" 40 -m 2 -e 127.0.0.1 -r $PEER -u alice -w wonderland
uclient "long-term, TCP, ChannelData (padded)" 40 -t -m 2 -e 127.0.0.1 -r $PEER -u bob -w builder
uclient "long-term, UDP, Send/Data indications" 20 -s -e 127.0.0.1 -r $PEER -u u1 -w pw1
uclient "long-term, TCP, Send/Data indications" 20 -t -s -e 127.0.0.1 -r $PEER -u u2 -w pw2
uclient "client to client through two relays (-y)" 40 -y -m 2 -u u3 -w pw3
# REST API credentials (uclient -W makes expiry:user and the HMAC password)
uclient "REST credentials, UDP" 40 -m 2 -e 127.0.0.1 -r $PEER -u carol -W $SECRET
uclient "REST credentials, TCP, 1200-byte payload" 20 -t -l 1200 -e 127.0.0.1 -r $PEER -u frank -W $SECRET
# IPv6 relay (REQUESTED-ADDRESS-FAMILY) to an IPv6 peer
uclient "IPv6 relay (REQUESTED-ADDRESS-FAMILY) to [::1]" 20 -v -x -e ::1 -r $PEER6 -u u4 -w pw4
relay6=$(grep -oE "IPv6. Received relay addr: [^ ]+" "$T/uc.out" | head -1)
expect_match "the relayed address is IPv6" "relay addr: ::1:2[0-9]{4}" "$relay6"

# Bursts: datagrams read in batches (the listener polled every turn.poll_us), runs to one
# peer sent with UDP GSO, the answers to the client with sendmmsg — all there, in order
expect_eq "a burst of 400 mixed-size ChannelData both ways: all relayed, in order; then spaced ones" \
    "out 400/400 in order, back 400/400 in order, quiet 5/5" \
    "$($PROBE udp 127.0.0.1 $A burst u5 pw5 400 2>&1)"

# RTP/RTCP pairs (uclient without -c): EVEN-PORT with R, then RESERVATION-TOKEN
for tr in udp tcp; do
    flag=""; user=u6
    [ $tr = tcp ] && { flag=-t; user=u7; }
    timeout 60 turnutils_uclient -p $A -n 10 -l 160 -z 5 -m 1 $flag -e 127.0.0.1 -r $PEER -u $user -w ${user/u/pw} 127.0.0.1 >"$T/uc.out" 2>&1
    expect_eq "RTP/RTCP pair with a reserved port ($tr)" "tot_send_msgs=20, tot_recv_msgs=20" \
        "$(grep -E "start_mclient: tot_send_msgs=" "$T/uc.out" | tail -1 | grep -oE 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+')"
done
ports=$(grep -oE "allocation for u6: relay port [0-9]+" "$T/a.log" | awk '{print $NF}' | sort -n | tr '\n' ' ')
pair=$(echo "$ports" | awk '{ for (i = 1; i < NF; i++) if ($i % 2 == 0 && $(i + 1) == $i + 1) print $i, $(i + 1) }')
expect_match "RTP on an even port, RTCP on the reserved next one ($ports)" "^[0-9]+ [0-9]+$" "$pair"

# A client over IPv6 (listener [::1]) with an IPv6 relay
out=$(timeout 5 turnutils_stunclient -p $A ::1 2>&1)
expect_match "Binding over UDP/IPv6" "UDP reflexive addr: ::1:[0-9]+" "$out"
timeout 60 turnutils_uclient -p $A -n 20 -l 160 -z 5 -c -x -e ::1 -r $PEER6 -u u5 -w pw5 ::1 >"$T/uc.out" 2>&1
expect_eq "client over IPv6, IPv6 relay: 20 relayed and back" "tot_send_msgs=20, tot_recv_msgs=20" \
    "$(grep -E "start_mclient: tot_send_msgs=" "$T/uc.out" | tail -1 | grep -oE 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+')"

# Wrong credentials → 401
n401=$(grep -c " 401 " "$T/a.log")
timeout 20 turnutils_uclient -p $A -n 2 -c -e 127.0.0.1 -r $PEER -u alice -w wrong 127.0.0.1 >"$T/uc.out" 2>&1
expect_match "wrong password: the allocation fails" "Cannot complete Allocation" "$(cat "$T/uc.out")"
expect_match "wrong password: answered 401 (raw probe)" "^error 401$" "$($PROBE udp 127.0.0.1 $A allocate alice wrong)"
expect_match "right password: allocated (raw probe)" "^relay 127\.0\.0\.1:20[0-4][0-9]{2}$" "$($PROBE udp 127.0.0.1 $A allocate erin pw)"
expect_match "unknown user: 401" "^error 401$" "$($PROBE udp 127.0.0.1 $A allocate mallory x)"
timeout 20 turnutils_uclient -p $A -n 2 -c -e 127.0.0.1 -r $PEER -u carol -W wrong-secret 127.0.0.1 >"$T/uc.out" 2>&1
expect_match "REST password from the wrong secret: refused" "Cannot complete Allocation" "$(cat "$T/uc.out")"
[ "$(grep -c " 401 " "$T/a.log")" -gt "$n401" ] && ok "rtcd logged the 401s" || not_ok "rtcd logged the 401s"

# Quota: max_allocations_per_user=4 → one user's 5th allocation gets 486
for i in 1 2 3 4 5; do last=$($PROBE udp 127.0.0.1 $A allocate erin pw); done
expect_eq "per-user quota: 486 Allocation Quota Reached" "error 486" "$last"
expect_match "per-user quota logged" "user 'erin': 486" "$(cat "$T/a.log")"
expect_match "another user is not affected" "^relay " \
    "$(STUN_PROBE_PORT=13499 $PROBE udp 127.0.0.1 $A allocate u1 pw1)"

# A second rtcd without allow_peers: loopback peers are denied → 403
start_rtcd b --only turn --set server.workers=1 \
    --set turn.listen="udp:127.0.0.1:$B" --set turn.realm=example.org \
    --set turn.users="alice:wonderland" \
    --set turn.relay_port_min=20500 --set turn.relay_port_max=20999 \
    --set turn.max_allocations=5 || { not_ok "second rtcd starts"; finish; }
timeout 20 turnutils_uclient -p $B -n 2 -c -e 127.0.0.1 -r $PEER -u alice -w wonderland 127.0.0.1 >"$T/uc.out" 2>&1
expect_match "loopback peer denied by default → 403" "error 403" "$(cat "$T/uc.out")"
timeout 20 turnutils_uclient -p $B -n 2 -c -e 10.1.2.3 -r $PEER -u alice -w wonderland 127.0.0.1 >"$T/uc.out" 2>&1
expect_match "private peer denied by default → 403" "error 403" "$(cat "$T/uc.out")"
# Global quota: turn.max_allocations=5 → more allocations (each probe keeps its own) get 486
for i in 1 2 3 4 5 6; do last=$($PROBE udp 127.0.0.1 $B allocate alice wonderland); done
expect_eq "turn.max_allocations reached: 486" "error 486" "$last"
expect_match "the quota was counted, not refused from the start" "allocation for alice" "$(cat "$T/b.log")"

stop_pid "$RTCD_PID" && ok "rtcd b stops cleanly" || not_ok "rtcd b stops cleanly"

# A full rtcd: TURN long-term credentials are the users of its own store (realm = domain)
C=13403
"$RTCCTL" --set server.data_dir="$T/c" user add dave --password d4ve >/dev/null
start_rtcd c --set server.workers=1 --set sip.listen=udp:127.0.0.1:15060 \
    --set http.listen=tcp:127.0.0.1:18000 --set turn.listen="udp:127.0.0.1:$C" \
    --set turn.allow_peers="127.0.0.0/8" \
    --set turn.relay_port_min=20500 --set turn.relay_port_max=20999 || { not_ok "rtcd c starts"; finish; }
timeout 60 turnutils_uclient -p $C -n 20 -l 160 -z 5 -c -e 127.0.0.1 -r $PEER -u dave -w d4ve 127.0.0.1 >"$T/uc.out" 2>&1
expect_eq "a user of the store relays with its SIP password" "tot_send_msgs=20, tot_recv_msgs=20" \
    "$(grep -oE 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+' "$T/uc.out" | tail -1)"
timeout 20 turnutils_uclient -p $C -n 2 -c -e 127.0.0.1 -r $PEER -u dave -w wrong 127.0.0.1 >"$T/uc.out" 2>&1
expect_match "the store user with a wrong password: refused" "Cannot complete Allocation" "$(cat "$T/uc.out")"
stop_pid "$RTCD_PID" && ok "rtcd c stops cleanly" || not_ok "rtcd c stops cleanly"
# a stops with live allocations (TCP and UDP): everything is closed and freed
stop_pid "$A_PID" && ok "rtcd a stops cleanly with live allocations" || not_ok "rtcd a stops cleanly with live allocations" "$(tail -5 "$T/a.log")"
expect_match "rtcd a counted relayed packets" "packets to peers" "$(cat "$T/a.log")"
finish

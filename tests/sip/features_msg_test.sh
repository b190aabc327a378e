#!/usr/bin/env bash
# Messaging features on the wire (docs/messaging.md): a MESSAGE forks to every
# device of a user; is-composing (RFC 3994) passes through and is never stored
# nor archived; a group address reaches every member but the sender, with the
# group and the sender visible, and refuses non-members; rtcctl broadcast
# reaches online users and, with --offline-too, offline users when they register.
. "$(dirname "$0")/../lib.sh"
UA="python3 $(dirname "$0")/sipua.py"
port=15700
srv=127.0.0.1:$port
ctl() { "$RTCCTL" --set server.data_dir="$T/rtcd" "$@"; }
ctl broadcast --expires 5 "x" >/dev/null 2>&1
expect_eq "broadcast --expires without --offline-too is a usage error" 2 $?
for u in alice bob carol dave; do ctl user add $u --password secret >/dev/null; done
ctl user set-display alice "Alice Smith" >/dev/null 2>&1 || true
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:15799
      --set turn.listen=udp:127.0.0.1:15798 --set server.secret=features-test-secret)
start_rtcd rtcd "${args[@]}" || { not_ok "rtcd starts"; finish; }

# bob_listen FILE PORT SECONDS [more args] — bob's device in the background
listen() {
    local who=$1 file=$2 p=$3 secs=$4
    shift 4
    $UA listen --server $srv --user "$who" --password secret --port "$p" --seconds "$secs" "$@" \
        >"$T/$file" 2>&1 &
    track $!
    LISTENERS+=($!)
}
LISTENERS=()
wait_listeners() { local p; for p in "${LISTENERS[@]}"; do wait "$p" 2>/dev/null; done; LISTENERS=(); }
wait_registered() { # FILE...
    local f i
    for f in "$@"; do
        for i in $(seq 1 50); do grep -q REGISTERED "$T/$f" 2>/dev/null && break; sleep 0.1; done
    done
}

# ---- 1. a MESSAGE reaches both of bob's devices; the answer is a 200 ----
listen bob b1 15711 6 --show Content-Type
listen bob b2 15712 6
wait_registered b1 b2
out=$($UA send --server $srv --user alice --password secret --to bob --prefix fan)
expect_match "MESSAGE to a user with two devices is answered 200" "^ACKED fan-1 200$" "$out"
# ---- 2. is-composing passes through untouched while bob is online ----
out=$($UA send --server $srv --user alice --password secret --to bob --prefix typing \
      --ctype application/im-iscomposing+xml)
expect_match "is-composing to an online user is answered 2xx" "^ACKED typing-1 2" "$out"
# ---- IMDN (RFC 5438): a CPIM body asking for notifications passes byte for byte ----
cpim='From: <sip:alice@localhost>\nTo: <sip:bob@localhost>\nNS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: {n}\nimdn.Disposition-Notification: positive-delivery, display\nDateTime: 2026-11-22T07:00:00Z\n\nContent-Type: text/plain\n\nhello {n}'
out=$($UA send --server $srv --user alice --password secret --to bob --prefix cpim \
      --ctype message/cpim --body "$cpim")
expect_match "a CPIM MESSAGE with IMDN headers is answered 2xx" "^ACKED cpim-1 2" "$out"
sleep 1.2
wait_listeners
grep -q '^imdn.Disposition-Notification: positive-delivery, display' "$T/b1" &&
    grep -q '^imdn.Message-ID: cpim-1' "$T/b1" && grep -q '^H Content-Type: message/cpim' "$T/b1" &&
    ok "the CPIM body and its IMDN headers arrive untouched" ||
    not_ok "the CPIM body and its IMDN headers arrive untouched" "$(cat "$T/b1")"
grep -q '^GOT fan-1$' "$T/b1" && grep -q '^GOT fan-1$' "$T/b2" && ok "both devices got the MESSAGE" ||
    not_ok "both devices got the MESSAGE" "$(cat "$T/b1" "$T/b2" | head -20)"
grep -q 'typing-1' "$T/b1" && grep -q 'typing-1' "$T/b2" && ok "both devices got the is-composing" ||
    not_ok "both devices got the is-composing" "$(cat "$T/b1" | head -20)"
grep -q '^H Content-Type: application/im-iscomposing+xml' "$T/b1" &&
    ok "is-composing keeps its Content-Type" || not_ok "is-composing keeps its Content-Type"
# ---- bob is offline now: is-composing is refused (not stored), a text is stored ----
out=$($UA send --server $srv --user alice --password secret --to bob --prefix typing2 \
      --ctype application/im-iscomposing+xml)
expect_match "is-composing to an offline user gets 480" "^FAILED typing2-1 480$" "$out"
out=$($UA send --server $srv --user alice --password secret --to bob --prefix stored)
expect_match "a text to an offline user is stored (202)" "^ACKED stored-1 202$" "$out"
pending=$(ctl messages pending --user bob --json)
expect_match "the stored text waits for bob" '"stored-1"' "$pending"
if printf '%s' "$pending" | grep -q typing; then not_ok "is-composing is not stored offline"
else ok "is-composing is not stored offline"; fi
imdn='<?xml version="1.0" encoding="UTF-8"?>\n<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>{n}</message-id><datetime>2026-11-22T07:00:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>'
out=$($UA send --server $srv --user alice --password secret --to bob --prefix imdn \
      --ctype message/imdn+xml --body "$imdn")
expect_match "an IMDN to an offline user is stored like any message (202)" "^ACKED imdn-1 202$" "$out"
sleep 0.3 # the archive commits in batches (50 ms)
arch=$(ctl archive search "" --user alice --json)
expect_match "the texts are archived" 'fan-1' "$arch"
if printf '%s' "$arch" | grep -q -i 'iscomposing\|typing'; then
    not_ok "is-composing is not archived" "$arch"; else ok "is-composing is not archived"; fi

# ---- 3. groups as addresses ----
ctl group add team >/dev/null
ctl group members add team alice bob carol >/dev/null
sleep 0.8 # rtcd reloads groups within a second
listen bob gb 15713 4 --show From,P-Asserted-Identity
listen alice ga 15714 4
wait_registered gb ga
# carol is offline: she gets it when she registers
out=$($UA send --server $srv --user alice --password secret --to team --prefix grp)
expect_match "a member's MESSAGE to the group is accepted (202)" "^ACKED grp-1 202$" "$out"
out=$($UA send --server $srv --user dave --password secret --to team --prefix intruder)
expect_match "a non-member gets 403" "^FAILED intruder-1 403$" "$out"
sleep 1.2
wait_listeners
grep -q '^GOT grp-1$' "$T/gb" && ok "a member got the group message" ||
    not_ok "a member got the group message" "$(cat "$T/gb")"
# bob's stored text arrives first (he registers); look at the group message's headers
from=$(grep -B2 '^GOT grp-1$' "$T/gb" | grep '^H From:')
expect_match "From is the group, named after the sender" 'Alice Smith \(team\)|alice \(team\)' "$from"
expect_match "replies go to the group address" '<sip:team@localhost>' "$from"
expect_match "the sender is in P-Asserted-Identity" \
    '^H P-Asserted-Identity: <sip:alice@localhost>' "$(grep -B2 '^GOT grp-1$' "$T/gb" | grep '^H P-Asserted')"
if grep -q 'grp-1' "$T/ga"; then not_ok "the sender does not get her own group message"
else ok "the sender does not get her own group message"; fi
grep -q intruder "$T/gb" && not_ok "a non-member's message is not delivered" ||
    ok "a non-member's message is not delivered"
$UA listen --server $srv --user carol --password secret --port 15715 --seconds 2 >"$T/gc" 2>&1
grep -q '^GOT grp-1$' "$T/gc" && ok "an offline member gets it when she registers" ||
    not_ok "an offline member gets it when she registers" "$(cat "$T/gc")"
# a user and a group of the same name: the user wins (rtcctl warns)
clash=$(ctl group add bob 2>&1)
expect_match "rtcctl warns when a group is named like a user" "warning: a user named bob exists" "$clash"
out=$($UA send --server $srv --user alice --password secret --to nosuch --prefix x)
expect_match "an unknown name gets 404" "^FAILED x-1 404$" "$out"

# ---- 4. broadcast ----
listen bob bb 15716 5 --show From
wait_registered bb
bout=$(ctl broadcast "maintenance at noon")
rc=$?
expect_eq "rtcctl broadcast exits 0" 0 $rc
expect_match "rtcctl says how many users it addressed" "addressed to 4 user\(s\)" "$bout"
expect_match "rtcd took the broadcast within a second" "rtcd took it" "$bout"
bout=$(ctl broadcast --group team --offline-too "team meeting")
expect_match "a group broadcast addresses the members" "addressed to 3 user\(s\) of group team" "$bout"
ctl broadcast --group team --offline-too --expires 1 "fleeting" >/dev/null
sleep 1
wait_listeners
grep -q '^GOT maintenance at noon$' "$T/bb" && ok "an online user gets the broadcast" ||
    not_ok "an online user gets the broadcast" "$(cat "$T/bb")"
expect_match "the broadcast comes from the system address" '<sip:system@localhost>' \
    "$(grep -B1 '^GOT maintenance' "$T/bb" | grep '^H From:')"
# carol was offline for both: only the --offline-too one waits for her; dave gets none
# rtcd's count per broadcast (svc/deliver outcomes): bob online; alice, carol, dave not
expect_match "broadcast 1: 1 delivered, 3 not online" \
    "broadcast 1: 1 delivered, 0 stored offline, 3 not online, 0 failed" "$(cat "$T/rtcd.log")"
expect_match "broadcast 2 (--offline-too): 1 delivered, 2 stored" \
    "broadcast 2: 1 delivered, 2 stored offline, 0 not online, 0 failed" "$(cat "$T/rtcd.log")"
$UA listen --server $srv --user carol --password secret --port 15717 --seconds 2 >"$T/bc" 2>&1
grep -q '^GOT team meeting$' "$T/bc" && ok "--offline-too: an offline member gets it on REGISTER" ||
    not_ok "--offline-too: an offline member gets it on REGISTER" "$(cat "$T/bc")"
grep -q 'fleeting' "$T/bc" && not_ok "an expired broadcast is not delivered" "$(cat "$T/bc")" ||
    ok "an expired broadcast is not delivered (--expires 1, registered later)"
grep -q 'maintenance' "$T/bc" && not_ok "without --offline-too nothing is stored" ||
    ok "without --offline-too nothing is stored"
$UA listen --server $srv --user dave --password secret --port 15718 --seconds 1.5 >"$T/bd" 2>&1
grep -q '^GOT' "$T/bd" && not_ok "a non-member gets no group broadcast" "$(cat "$T/bd")" ||
    ok "a non-member gets no group broadcast"
bout=$(ctl broadcast --group nosuch "x" 2>&1)
expect_eq "broadcast to an unknown group is refused" 1 $?

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?

# ---- messaging.group_senders = users: any local user may write to a group ----
start_rtcd rtcd2 "${args[@]}" --set server.data_dir="$T/rtcd" --set messaging.group_senders=users ||
    { not_ok "rtcd restarts"; finish; }
out=$($UA send --server $srv --user dave --password secret --to team --prefix open)
expect_match "group_senders=users: a non-member's MESSAGE is accepted" "^ACKED open-1 202$" "$out"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly (2)" 0 $?
finish

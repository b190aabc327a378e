#!/usr/bin/env bash
# Offline messages survive a crash: alice sends a burst of MESSAGEs to bob, who
# has no device; rtcd is killed with SIGKILL in the middle; after a restart bob
# registers and every MESSAGE that had been answered 202 arrives, exactly once,
# in order (store issue item 4; RFC 3428 with the offline store).
. "$(dirname "$0")/../lib.sh"
UA="python3 $(dirname "$0")/sipua.py"
port=15060
srv=127.0.0.1:$port
for u in alice bob; do
    "$RTCCTL" --set server.data_dir="$T/rtcd" user add $u --password secret >/dev/null
done
args=(--set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18000
      --set turn.listen=udp:127.0.0.1:13400 --set server.secret=offline-test-secret)
start_rtcd rtcd "${args[@]}" || { not_ok "rtcd starts"; finish; }

$UA send --server $srv --user alice --password secret --to bob --count 200 --prefix burst \
    >"$T/sent.txt" 2>&1 &
sender=$!
track $sender
# let some messages be stored, then kill rtcd hard
for i in $(seq 1 100); do
    [ "$(grep -c ACKED "$T/sent.txt")" -ge 30 ] && break
    sleep 0.05
done
kill -KILL "$RTCD_PID"
wait "$RTCD_PID" 2>/dev/null
wait $sender 2>/dev/null
acked=$(grep -c '^ACKED' "$T/sent.txt")
if [ "$acked" -ge 30 ]; then ok "$acked MESSAGEs answered 2xx before the SIGKILL"; else
    not_ok "MESSAGEs answered before the SIGKILL" "$(tail -3 "$T/sent.txt")"; fi
expect_eq "every stored MESSAGE was answered 202" "$acked" "$(grep -c 'ACKED .* 202$' "$T/sent.txt")"

start_rtcd rtcd2 "${args[@]}" --set server.data_dir="$T/rtcd" || { not_ok "rtcd restarts"; finish; }
$UA listen --server $srv --user bob --password secret --port 15070 --seconds 6 >"$T/got.txt" 2>&1
expect_eq "bob registers after the restart" "REGISTERED 200" "$(head -1 "$T/got.txt")"
grep '^ACKED' "$T/sent.txt" | awk '{print $2}' >"$T/want"
grep '^GOT' "$T/got.txt" | awk '{print $2}' >"$T/have"
missing=$(comm -23 <(sort "$T/want") <(sort -u "$T/have") | wc -l)
expect_eq "every acknowledged MESSAGE arrives" 0 "$missing"
expect_eq "none arrives twice" "$(wc -l <"$T/have")" "$(sort -u "$T/have" | wc -l)"
# order: the acknowledged ones arrive in the order they were sent
expect_eq "they arrive in order" "$(cat "$T/want")" "$(grep -Fx -f "$T/want" "$T/have")"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish

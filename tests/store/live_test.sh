#!/usr/bin/env bash
# A running rtcd sees user changes made by rtcctl within a second, without a
# restart: the store thread polls the users change counter (every 250 ms) and
# reloads the credential table, logging each change at debug level
# ("store: credentials: user NAME added|changed|removed"). Also: rtcd exits 2
# with a clear message when the store cannot be opened, and a SIGTERM closes it.
. "$(dirname "$0")/../lib.sh"

# wait_log PATTERN MS — polls the log for PATTERN for up to MS milliseconds;
# prints the elapsed milliseconds.
wait_log() {
    local start=$(date +%s%N) now
    while :; do
        now=$(( ($(date +%s%N) - start) / 1000000 ))
        if grep -q -- "$1" "$T/live.log"; then echo "$now"; return 0; fi
        [ "$now" -gt "$2" ] && return 1
        sleep 0.02
    done
}

LISTEN=(--set "sip.listen=udp:127.0.0.1:15460" --set "http.listen=tcp:127.0.0.1:15461"
        --set "turn.listen=udp:127.0.0.1:15462" --set server.workers=1)
ctl() { "$RTCCTL" --set server.data_dir="$T/live" "$@"; }

mkdir -p "$T/live"
ctl user add early --password e >/dev/null
if ! start_rtcd live "${LISTEN[@]}"; then not_ok "rtcd starts"; finish; fi
ok "rtcd starts with the store"
expect_match "store opened at start" "store: sqlite, schema version [0-9]+, realm localhost, 1 user" \
    "$(grep 'rtcd: store:' "$T/live.log")"

ctl user add late --password l >/dev/null
if ms=$(wait_log "credentials: user late added" 1000); then ok "user added by rtcctl seen in $ms ms"
else not_ok "user added by rtcctl seen within a second" "$(tail -5 "$T/live.log")"; fi
ctl user disable early >/dev/null
if ms=$(wait_log "credentials: user early changed" 1000); then ok "user disabled by rtcctl seen in $ms ms"
else not_ok "user disabled by rtcctl seen within a second" "$(tail -5 "$T/live.log")"; fi
ctl user del late >/dev/null
if ms=$(wait_log "credentials: user late removed" 1000); then ok "user deleted by rtcctl seen in $ms ms"
else not_ok "user deleted by rtcctl seen within a second" "$(tail -5 "$T/live.log")"; fi

# rtcctl writes while rtcd holds the database open: no "database is locked"
ctl user import <(python3 -c "
for i in range(2000): print(f'bulk{i},p{i}')") >/dev/null
expect_eq "bulk import beside a running rtcd" 0 $?
if wait_log "credentials reloaded: 2001 user" 2000 >/dev/null; then ok "bulk import reloaded once"
else not_ok "bulk import reloaded" "$(grep credentials "$T/live.log" | tail -3)"; fi

stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly on SIGTERM" 0 $?
if grep -q "rtcd: stopped" "$T/live.log"; then ok "rtcd logs its stop"; else not_ok "rtcd logs its stop"; fi

# a store that cannot be opened: exit 2 with the reason
"$RTCD" --set server.data_dir="$T/x" --set store.backend=postgres \
    --set store.url=postgresql://rtcd@127.0.0.1:15499/none "${LISTEN[@]}" >"$T/bad.log" 2>&1
expect_eq "unreachable store: rtcd exits 2" 2 $?
expect_match "unreachable store: clear message" "cannot open the store \(postgres\): postgresql: " \
    "$(cat "$T/bad.log")"
mkdir -p "$T/ro"
"$RTCD" --set server.data_dir="$T/x" --set store.sqlite_file="$T/nodir/sub/rtcd.db" \
    "${LISTEN[@]}" >"$T/bad2.log" 2>&1
expect_eq "unopenable SQLite file: rtcd exits 2" 2 $?
expect_match "unopenable SQLite file: clear message" "cannot open the store \(sqlite\): .*nodir" \
    "$(cat "$T/bad2.log")"
finish

# tests/lib.sh — shared helpers for the wire tests (sourced by tests/*/*.sh).
#
# Environment (set by ctest from tests/*/CMakeLists.txt):
#   RTCD, RTCCTL   paths of the binaries under test
# Conventions (docs/testing.md):
#   - every test works in its own temporary folder ($T), removed on exit;
#   - fixed ports are below 32768 (the ephemeral range starts there), each area
#     has its own range: sip 15060-15199, store 15400-15499, turn 13400-13499
#     and relay ports 20000-20999, http 18000-18099, apps 18100-18199;
#   - only processes the test started are stopped, by their PID;
#   - the script ends with "N passed, N failed" and exits non-zero on a failure.

set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-test.XXXXXX")
PASSED=0
FAILED=0
_PIDS=()

_cleanup() {
    local pid
    for pid in "${_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap _cleanup EXIT

# ok NAME — records a passed check.
ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
# not_ok NAME [DETAIL] — records a failed check.
not_ok() { FAILED=$((FAILED + 1)); echo "FAIL - $1${2:+: $2}"; }
# check NAME CMD... — runs CMD; passes when it exits 0.
check() {
    local name=$1
    shift
    if "$@" >"$T/check.out" 2>&1; then ok "$name"; else not_ok "$name" "$(tail -5 "$T/check.out")"; fi
}
# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}
# expect_match NAME REGEX TEXT
expect_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1" "'$3' does not match /$2/"; fi
}

# track PID — stop this process when the test ends.
track() { _PIDS+=("$1"); }

# start_rtcd NAME [rtcd args...] — starts rtcd with its data in $T/NAME, logging to
# $T/NAME.log; waits for its "ready:" line (10 s). Sets RTCD_PID.
start_rtcd() {
    local name=$1
    shift
    mkdir -p "$T/$name"
    "$RTCD" --set server.data_dir="$T/$name" --set log.level=debug "$@" >"$T/$name.log" 2>&1 &
    RTCD_PID=$!
    track "$RTCD_PID"
    local i
    for i in $(seq 1 100); do
        if grep -q "rtcd: ready:" "$T/$name.log" 2>/dev/null; then return 0; fi
        if ! kill -0 "$RTCD_PID" 2>/dev/null; then
            echo "rtcd exited during start:"; tail -20 "$T/$name.log"; return 1
        fi
        sleep 0.1
    done
    echo "rtcd not ready after 10 s:"; tail -20 "$T/$name.log"
    return 1
}

# stop_pid PID [SECONDS] — SIGTERM, then wait (default 5 s); returns its exit status.
stop_pid() {
    local pid=$1 secs=${2:-5} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 137
    fi
    wait "$pid" 2>/dev/null
}

# finish — prints the summary line and exits 1 when anything failed (or nothing ran).
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}

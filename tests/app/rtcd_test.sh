#!/usr/bin/env bash
# rtcd and rtcctl as programs: options, configuration errors, start and clean stop.
. "$(dirname "$0")/../lib.sh"

out=$("$RTCD" --version); expect_match "rtcd --version" '^rtcd [0-9]+\.[0-9]+\.[0-9]+$' "$out"
out=$("$RTCD" --help); expect_match "rtcd --help lists --check" '--check' "$out"
"$RTCD" --bogus >/dev/null 2>&1; expect_eq "unknown option exits 2" 2 $?

out=$("$RTCD" --check 2>&1); rc=$?
expect_eq "--check on the defaults exits 0" 0 $rc
out=$("$RTCD" --check --set sip.listen=bogus 2>&1); rc=$?
expect_eq "--check with a bad --set exits 2" 2 $rc
expect_match "the error names the key" "sip\.listen: 'bogus'" "$out"

cat >"$T/bad.ini" <<'INI'
[server]
domain = example.com
; comment

[sip]
t1_ms = 500
listen = udp:1.2.3.4:99999
INI
out=$("$RTCD" -c "$T/bad.ini" --check 2>&1); rc=$?
expect_eq "--check with a bad file exits 2" 2 $rc
expect_eq "the error names file:line and key" \
    "rtcd: $T/bad.ini:7: sip.listen: 'udp:1.2.3.4:99999': port out of range" "$out"

cat >"$T/good.ini" <<'INI'
[server]
domain = example.com
workers = 2
[log]
level = debug
INI
out=$("$RTCD" -c "$T/good.ini" --print-config 2>&1)
expect_match "--print-config shows the file's value" '^domain = example.com$' "$(echo "$out" | grep '^domain')"
out=$("$RTCD" -c "$T/good.ini" --set server.domain=other.org --print-config | grep '^domain')
expect_eq "--set overrides the file" "domain = other.org" "$out"

# Start on an otherwise idle configuration and stop with SIGTERM: exit 0 within a second.
if start_rtcd a -c "$T/good.ini" --set sip.listen=udp:127.0.0.1:15060 \
        --set http.listen=tcp:127.0.0.1:18000 --set turn.listen=udp:127.0.0.1:13400; then
    ok "rtcd starts and says ready"
    expect_match "it logs its workers" '2 worker\(s\)' "$(grep 'ready:' "$T/a.log")"
    t0=$(date +%s%N)
    stop_pid "$RTCD_PID" 1; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    expect_eq "SIGTERM: exit status 0" 0 $rc
    if [ "$ms" -lt 1000 ]; then ok "SIGTERM: stopped in ${ms} ms"; else not_ok "SIGTERM: stop took ${ms} ms"; fi
    expect_match "it logs the stop" 'rtcd: stopped' "$(tail -1 "$T/a.log")"
else
    not_ok "rtcd starts and says ready"
fi
if start_rtcd b --set sip.listen=udp:127.0.0.1:15060 --set http.listen=tcp:127.0.0.1:18000 \
        --set turn.listen=udp:127.0.0.1:13400; then
    kill -INT "$RTCD_PID"; wait "$RTCD_PID"; expect_eq "SIGINT: exit status 0" 0 $?
fi

out=$("$RTCCTL" --version); expect_match "rtcctl --version" '^rtcctl [0-9.]+$' "$out"
out=$("$RTCCTL" --help); expect_match "rtcctl --help lists commands" 'Commands:' "$out"
"$RTCCTL" >/dev/null 2>&1; expect_eq "rtcctl without a command exits 2" 2 $?
"$RTCCTL" frobnicate >/dev/null 2>&1; expect_eq "rtcctl unknown command exits 2" 2 $?
out=$("$RTCCTL" config --help); expect_match "per-command --help" 'Usage: rtcctl config' "$out"
"$RTCCTL" --set sip.listen=bogus config check >/dev/null 2>&1
expect_eq "rtcctl with a bad --set exits 2" 2 $?
out=$("$RTCCTL" -c "$T/good.ini" config show | grep '^domain')
expect_eq "rtcctl reads the same file" "domain = example.com" "$out"
finish

#!/usr/bin/env bash
# RFC 4475 on the wire: every torture message sent to rtcd over UDP. Valid
# requests are processed (never a 400); invalid ones are rejected with a 4xx/5xx
# (400, or the status index.tsv names: 505 bad version, 416 unknown scheme, 420
# unknown extension); responses are never answered; liberal ones may go either
# way but rtcd must keep running. Data: tests/data/rfc4475 (see its README.md).
. "$(dirname "$0")/../lib.sh"
data=$(cd "$(dirname "$0")/../data/rfc4475" && pwd)
port=15060
"$RTCCTL" --set server.data_dir="$T/rtcd" user add alice --password secret >/dev/null
# escnull.dat and regescrt.dat share branch, sent-by and method: while the first one's
# transaction lives (Timer J = 64*T1) the second is a retransmission and is absorbed.
# A short T1 ends each transaction before the next file is sent.
start_rtcd rtcd --set "sip.listen=udp:127.0.0.1:$port" --set http.listen=tcp:127.0.0.1:18000 \
    --set turn.listen=udp:127.0.0.1:13400 --set sip.t1_ms=10 || { not_ok "rtcd starts"; finish; }
python3 "$(dirname "$0")/torture.py" 127.0.0.1 $port "$data" >"$T/answers.txt"
while read -r name cls status; do
    case $cls in
        valid)
            if [ "$status" != 400 ] && [ "$status" != none ]; then ok "$name (valid): answered $status"
            else not_ok "$name (valid)" "answered $status"; fi ;;
        invalid)
            want=$(awk -F'\t' -v f="$name" '$1 == f { print $4 }' "$data/index.tsv")
            if [[ $status =~ ^[45][0-9][0-9]$ ]]; then ok "$name (invalid): rejected $status"
            elif [ "$status" = none ] && [[ $want == *"or drop"* ]]; then ok "$name (invalid): dropped"
            else not_ok "$name (invalid)" "answered $status; expected: $want"; fi ;;
        response)
            expect_eq "$name (a response): not answered" none "$status" ;;
        liberal)
            ok "$name (liberal): $status" ;;
    esac
done <"$T/answers.txt"
expect_eq "all 50 messages were sent" 50 "$(wc -l <"$T/answers.txt")"
# specific answers the RFC names
expect_eq "badvers.dat: 505 Version Not Supported" 505 "$(awk '$1 == "badvers.dat" { print $3 }' "$T/answers.txt")"
expect_eq "unkscm.dat: 416 Unsupported URI Scheme" 416 "$(awk '$1 == "unkscm.dat" { print $3 }' "$T/answers.txt")"
expect_eq "bext01.dat: 420 Bad Extension" 420 "$(awk '$1 == "bext01.dat" { print $3 }' "$T/answers.txt")"
expect_eq "zeromf.dat: 483 Too Many Hops" 483 "$(awk '$1 == "zeromf.dat" { print $3 }' "$T/answers.txt")"
expect_eq "mismatch01.dat: 400" 400 "$(awk '$1 == "mismatch01.dat" { print $3 }' "$T/answers.txt")"
kill -0 "$RTCD_PID" && ok "rtcd still runs after all of them" || not_ok "rtcd still runs after all of them"
stop_pid "$RTCD_PID"
expect_eq "rtcd stops cleanly" 0 $?
finish

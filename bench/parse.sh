#!/usr/bin/env bash
# bench/parse.sh — SIP parser throughput, rtcd beside libosip2, one core (the program is
# single-threaded and pinned to one CPU when taskset exists). Run by bench/run.sh
# (make bench / make bench-parse) with BUILD set to the Release build folder.
# PARSE_SECONDS: seconds per message and implementation (default 1).
# The last line is: parse: rtcd N msg/s, libosip2 M msg/s, ratio R
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-$PWD/build-bench}
bin=$BUILD/bench/parse/bench_parse
if [ ! -x "$bin" ]; then
    echo "bench/parse: $bin missing (needs libosip2-dev: scripts/deps.sh --bench)" >&2
    exit 1
fi
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cpus; $(uname -sr)"
"${pin[@]}" "$bin" bench/parse/msgs "${PARSE_SECONDS:-1}"

#!/bin/sh
# run_fuzzer.sh FUZZER SCRATCH_DIR SEED_DIR SECONDS — runs one libFuzzer target
# for a bounded time; fails on any crash, leak, timeout or sanitizer report.
set -eu
fuzzer=$1 scratch=$2 seeds=$3 seconds=$4
rm -rf "$scratch" && mkdir -p "$scratch"
set -- "$scratch"
[ -d "$seeds" ] && set -- "$scratch" "$seeds"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=70000 -print_final_stats=1 -artifact_prefix="$scratch/" "$@"

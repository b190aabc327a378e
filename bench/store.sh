#!/usr/bin/env bash
# bench/store.sh — the store's throughput on SQLite (bench/store/store_bench.c):
# durable offline enqueues one by one and batched, user import, credential
# table reload and lookups. Runs in a temporary folder, fixed counts.
set -euo pipefail
d=$(mktemp -d "${TMPDIR:-/tmp}/rtcd-bench-store.XXXXXX")
trap 'rm -rf "$d"' EXIT
"$BUILD/bench/store/store_bench" "$d"

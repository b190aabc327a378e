#!/usr/bin/env bash
# Digest, throttle and location-table micro-benchmarks (bench/auth/auth_bench.c).
set -euo pipefail
exec "$BUILD/bench/auth/auth_bench" "${AUTH_BENCH_USERS:-100000}"

#!/usr/bin/env bash
# bench/steer.sh — what the UDP steering program (src/net/steer.c, docs/sip-core.md) costs
# the kernel per datagram, with and without a tag (bench/steer/steer_bench.c). Loopback only,
# fixed counts.
set -euo pipefail
"$BUILD/bench/steer/steer_bench"

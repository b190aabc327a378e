#!/usr/bin/env bash
# bench/run.sh NAME|all — runs bench/NAME.sh (or every bench/*.sh but this one)
# with BUILD pointing at the Release build; each writes its figures to
# bench/results/NAME.txt and prints a one-line summary. RESULTS.md is the
# curated table of the last full run.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-$PWD/build-bench}
mkdir -p bench/results
names=()
if [ "${1:-all}" = all ]; then
    for f in bench/*.sh; do
        n=$(basename "$f" .sh)
        [ "$n" = run ] || names+=("$n")
    done
else
    names=("$1")
fi
status=0
for n in "${names[@]}"; do
    if [ ! -x "bench/$n.sh" ]; then echo "bench: no bench/$n.sh" >&2; exit 2; fi
    echo "== bench: $n =="
    if ! "bench/$n.sh" | tee "bench/results/$n.txt"; then status=1; fi
done
exit $status

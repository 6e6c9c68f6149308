#!/bin/sh
# make bench: gatehouse vs HAProxy vs nginx vs no proxy in one run; see
# tests/bench/bench.py. Knobs: BENCH_SECONDS (per measure, default 10),
# GH_BENCH_ROUNDS (default 5), GH_BENCH_KEYS ("ec rsa", or one of them),
# GH_BENCH_IDLE (idle connections for memory, default 5000). Quick check of the
# code path: BENCH_SECONDS=2 GH_BENCH_ROUNDS=1 GH_BENCH_IDLE=500 scripts/bench.sh build
# GH_BENCH_BEFORE=DIR (a build folder of an earlier gatehouse) adds that build to
# the same interleaved rounds and counts instructions per request of both with
# callgrind (tests/bench/callgrind.py); GH_BENCH_ONLY=before-after measures only
# the two, back to back per round. Both write their sections of docs/performance.md.
# GH_BENCH_ONLY=l4 measures only the Layer-4 rows (TLS pass-through, UDP flows)
# and replaces their section. GH_BENCH_ONLY=main measures only the main table's
# rows (both key types) and appends them as one more run to "Consecutive runs
# of the main table", for runs made one after another. GH_BENCH_ONLY=store
# measures only the shared store's interface (local vs a redis-server it
# starts) and replaces its section.
set -eu
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
python3 tests/bench/bench.py "${1:-build}" "${BENCH_SECONDS:-10}"
if [ -n "${GH_BENCH_BEFORE:-}" ]; then
    out=$(python3 tests/bench/callgrind.py "$GH_BENCH_BEFORE" "${1:-build}")
    echo "$out"
    # Its own section, replaced, not appended twice: the section
    # "Instructions per request (callgrind)" (make bench-callgrind, three
    # proxies, kept with its analysis) is left as it is.
    sec="## Instructions per request, this build against the one before (callgrind)"
    awk -v sec="$sec" '$0 == sec {skip=1; next} /^## /{skip=0} !skip' \
        docs/performance.md > docs/performance.md.new
    {
        echo
        echo "$sec"
        echo
        echo "One worker, one keep-alive TLS client, 1 KiB responses re-encrypted from nginx"
        echo "(tests/bench/callgrind.py: counters zeroed after 100 warm-up requests, dumped"
        echo "after 2000 more), GH_BENCH_BEFORE's build first."
        echo "Counted instructions do not depend on what else the machine is doing."
        echo
        echo "$out" | sed 's/^/    /'
    } >> docs/performance.md.new
    mv docs/performance.md.new docs/performance.md
fi

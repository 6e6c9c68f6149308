#!/bin/sh
# make bench: gatehouse vs HAProxy vs nginx in one run; see tests/bench/bench.py.
set -eu
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
exec python3 tests/bench/bench.py "${1:-build}" "${BENCH_SECONDS:-10}"

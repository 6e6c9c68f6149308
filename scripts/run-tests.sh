#!/bin/sh
# Runs every suite against the build in $1 (default build/) and ends with
# one line "N passed, N failed" summing them all.
set -u
O=${1:-build}
cd "$(dirname "$0")/.."
total_p=0
total_f=0
run() {
    name=$1
    shift
    echo "== $name"
    out=$("$@" 2>&1)
    rc=$?
    echo "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL $name: no result line (exit $rc)"
        total_f=$((total_f + 1))
        return
    fi
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exit $rc"
        total_f=$((total_f + 1))
    fi
}
run style scripts/check-style.sh
run unit "./$O/unit_tests"
GH_BUILD="$PWD/$O" run integration /usr/bin/python3 tests/integration/run.py ${GH_TESTS:-}
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]

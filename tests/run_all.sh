#!/usr/bin/env bash
# Run every test suite and print one total. Each suite speaks TAP-style lines:
#   "ok N - name" / "not ok N - name"   (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, e2e, replay)
# A suite that exits non-zero without printing a failure counts as one failure.
# The last line is "N passed, N failed".
#   tests/run_all.sh [all|unit|e2e|fuzz]
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
ASAN_DIR=build/asan
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export GH_BIN=${GH_BIN:-$PWD/$ASAN_DIR/gatehouse}
ulimit -n 20000 2>/dev/null || true

pass=0
fail=0
failed_names=()
logdir=build/test-logs
mkdir -p "$logdir"

run_suite() { # name, command...
    local name=$1
    shift
    local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -cE '^ok [0-9]+' "$log")
    f=$(grep -cE '^not ok [0-9]+' "$log")
    grep -E '^not ok [0-9]+' "$log" | sed 's/^/   /'
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "   suite exited with status $rc without a failure line; last lines of $log:"
        tail -n 15 "$log" | sed 's/^/   | /'
    fi
    if [ "$f" -ne 0 ]; then failed_names+=("$name"); fi
    echo "   $p passed, $f failed"
    pass=$((pass + p))
    fail=$((fail + f))
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in $(find $ASAN_DIR/tests/unit -type f -executable 2>/dev/null | sort); do
        run_suite "unit/${t#$ASAN_DIR/tests/unit/}" "$t"
    done
fi
if [ "$what" = all ] || [ "$what" = fuzz ]; then
    for t in $(find $ASAN_DIR/tests/fuzz -type f -name '*_replay' 2>/dev/null | sort); do
        n=$(basename "$t" _replay)
        run_suite "fuzz-replay/$n" "$t" tests/fuzz/corpus/"$n"
    done
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
    for t in $(ls tests/e2e/[0-9][0-9]_*.py 2>/dev/null | sort); do
        run_suite "e2e/$(basename "$t" .py)" python3 "$t"
    done
fi

echo
[ ${#failed_names[@]} -eq 0 ] || echo "failing suites: ${failed_names[*]} (logs in $logdir)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

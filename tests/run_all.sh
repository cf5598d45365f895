#!/usr/bin/env bash
# Run every test suite and print one total. Each suite speaks TAP:
#   "1..N" (the plan), then "ok N - name" / "not ok N - name"
#   (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, e2e through ghtest.py, the fuzz corpus replay)
# A suite counts as failed tests, besides its "not ok" lines:
#   - the planned tests it did not run (it crashed or was stopped early); one if it printed no plan
#     or ran more tests than planned;
#   - one if it was killed at the time limit with every planned test done (it hung at the end);
#   - one if it exited non-zero without any of the above.
# A suite whose only failures are a Gatehouse hanging in LeakSanitizer's exit-time leak scan
# ("# LSAN_EXIT_HANG" after each, see tests/e2e/ghtest.py) is run once more, and that second run
# is what counts; it never passes without one clean run.
# The last line is "N passed, N failed".
#   tests/run_all.sh [all|unit|e2e|fuzz|release]
#   GH_SUITE_TIMEOUT  seconds one suite may run before it is killed (default 300)
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
ASAN_DIR=build/asan
REL_BIN=$PWD/build/release/gatehouse
SUITE_TIMEOUT=${GH_SUITE_TIMEOUT:-300}
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

# tally LOG RC SECONDS: set p (passed), f (failed, with what the TAP lines do not show),
# hangs (tests that failed only by a LeakSanitizer exit hang) and notes (why, one per line).
tally() {
    local log=$1 rc=$2 secs=$3
    local planned plans ran extra=0
    p=$(grep -cE '^ok [0-9]+' "$log")
    f=$(grep -cE '^not ok [0-9]+' "$log")
    hangs=$(grep -c '^# LSAN_EXIT_HANG' "$log")
    plans=$(grep -cE '^1\.\.[0-9]+' "$log")
    planned=$(grep -E '^1\.\.[0-9]+' "$log" | sed 's/^1\.\.\([0-9]*\).*/\1/' | awk '{s += $1} END {print s + 0}')
    ran=$((p + f))
    notes=""
    if { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && [ "$secs" -ge "$SUITE_TIMEOUT" ]; then
        notes+="killed at the time limit after ${secs}s (GH_SUITE_TIMEOUT=$SUITE_TIMEOUT)"$'\n'
        timed_out=1
    else
        timed_out=0
    fi
    if [ "$plans" -eq 0 ]; then
        extra=1
        notes+="printed no TAP plan (1..N): counted as one failure"$'\n'
    elif [ "$ran" -lt "$planned" ]; then
        extra=$((planned - ran))
        notes+="ran $ran of $planned planned tests: the $extra that did not run count as failures"$'\n'
    elif [ "$ran" -gt "$planned" ]; then
        extra=1
        notes+="ran $ran tests but planned $planned: counted as one failure"$'\n'
    fi
    if [ "$extra" -eq 0 ] && [ "$timed_out" -eq 1 ]; then
        extra=1
        notes+="every planned test reported, but it did not exit: counted as one failure"$'\n'
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$extra" -eq 0 ]; then
        extra=1
        notes+="exited with status $rc without a failure line: counted as one failure"$'\n'
    fi
    f=$((f + extra))
    if [ "$extra" -ne 0 ]; then hangs=0; fi # only a clean "hang and nothing else" is retried
}

run_suite() { # name, command...
    local name=$1
    shift
    local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
    local attempt t0 rc secs
    echo "== $name"
    for attempt in 1 2; do
        t0=$SECONDS
        timeout -k 10 "$SUITE_TIMEOUT" "$@" >"$log" 2>&1
        rc=$?
        secs=$((SECONDS - t0))
        tally "$log" "$rc" "$secs"
        if [ "$attempt" -eq 1 ] && [ "$f" -gt 0 ] && [ "$hangs" -eq "$f" ]; then
            mv "$log" "$log.try1"
            echo "   $f failure(s), each only a gatehouse hanging in LeakSanitizer's exit-time scan:"
            echo "   running the suite once more (first run's log: $log.try1)"
            continue
        fi
        break
    done
    grep -E '^not ok [0-9]+' "$log" | sed 's/^/   /'
    [ -z "$notes" ] || printf '%s' "$notes" | sed 's/^/   suite: /'
    if [ -n "$notes" ] && [ "$rc" -ne 0 ]; then
        echo "   last lines of $log:"
        tail -n 15 "$log" | sed 's/^/   | /'
    fi
    if [ "$f" -ne 0 ]; then failed_names+=("$name"); fi
    echo "   $p passed, $f failed (${secs}s$([ "$attempt" -eq 1 ] || echo ', second run'))"
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
if [ "$what" = all ] || [ "$what" = release ]; then
    # the binary `make build` ships, without sanitizers: does it start, proxy, check, stop?
    run_suite "release/smoke" env GH_BIN="$REL_BIN" python3 tests/e2e/release_smoke.py
fi

echo
[ ${#failed_names[@]} -eq 0 ] || echo "failing suites: ${failed_names[*]} (logs in $logdir)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# Run libFuzzer targets for a bounded time each.
#   tests/fuzz/run_fuzz.sh build/fuzz/fuzz_h1_request [build/fuzz/fuzz_... ...]
# A target uses tests/fuzz/<name>.dict when there is one, else a generated HTTP/1.1 dictionary.
# Each target starts from a copy of its committed corpus (tests/fuzz/corpus/<name>)
# in build/fuzz/corpus-run/<name>; new inputs land there, never in the committed
# corpus (unless FUZZ_MERGE=1). Crash reproducers go to build/fuzz/artifacts/. Exits non-zero
# if any target crashed or could not run.
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_JOBS     parallel fuzzing processes per target (default 1)
#   FUZZ_MERGE=1  after a target's run without a crash, merge what it found into the committed
#                 corpus with libFuzzer's -merge=1: only inputs that reach code the corpus does
#                 not are copied (named by their SHA-1), so it grows by a few small files;
#                 review and commit them (make check replays the committed corpus)
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
merge=${FUZZ_MERGE:-0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
if [ $# -eq 0 ]; then
    echo "usage: $0 build/fuzz/fuzz_<target>..." >&2
    exit 2
fi

run_root=build/fuzz/corpus-run
art_root=build/fuzz/artifacts
mkdir -p "$run_root" "$art_root"

# A dictionary of HTTP/1.1 tokens, generated so there is nothing else to keep in sync.
dict=build/fuzz/http1.dict
cat >"$dict" <<'DICT'
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"HTTP/1.1"
"HTTP/1.0"
"HTTP/2.0"
"GET "
"POST "
"CONNECT "
"OPTIONS "
" / "
"http://"
"https://"
"Host: "
"Content-Length: "
"Transfer-Encoding: "
"chunked"
"gzip, chunked"
"Connection: "
"close"
"keep-alive"
"upgrade"
"Upgrade: "
"Expect: "
"100-continue"
":443"
"[::1]"
";ext="
"\x22"
"0\x0d\x0a\x0d\x0a"
"ffffffff"
DICT

status=0
for bin in "$@"; do
    name=$(basename "$bin")
    if [ ! -x "$bin" ]; then
        echo "not ok - $name: $bin is not an executable" >&2
        status=1
        continue
    fi
    seed=tests/fuzz/corpus/$name
    work=$run_root/$name
    mkdir -p "$work"
    if [ -d "$seed" ]; then
        cp -n "$seed"/* "$work"/ 2>/dev/null || true
    fi
    tdict=$dict # a target's own dictionary, when it has one
    if [ -f "tests/fuzz/$name.dict" ]; then
        tdict=tests/fuzz/$name.dict
    fi
    log=build/fuzz/$name.log
    echo "== $name: fuzzing for ${secs}s (corpus $work, log $log)"
    extra=()
    if [ "$jobs" -gt 1 ]; then
        extra=(-jobs="$jobs" -workers="$jobs")
    fi
    "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -dict="$tdict" -artifact_prefix="$art_root/$name-" -print_final_stats=1 \
        "${extra[@]}" "$work" >"$log" 2>&1
    rc=$?
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' "$log" |
        sed 's/^/   /'
    if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: (Address|Undefined)|runtime error|invariant failed' "$log"; then
        echo "not ok - $name: crash or failed invariant (exit $rc); see $log and $art_root/$name-*"
        grep -E 'ERROR|runtime error|invariant failed|Test unit written' "$log" | head -5 | sed 's/^/   | /'
        status=1
    else
        echo "ok - $name: no crash in ${secs}s"
        if [ "$merge" = 1 ]; then
            mkdir -p "$seed"
            before=$(find "$seed" -type f | wc -l)
            # -use_counters=0: an input is kept for reaching code the corpus does not, not for
            # running a loop a different number of times (which would keep hundreds); the
            # merge tries the smallest inputs first.
            "$bin" -merge=1 -use_counters=0 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
                "$seed" "$work" >"build/fuzz/$name.merge.log" 2>&1
            mrc=$?
            after=$(find "$seed" -type f | wc -l)
            if [ "$mrc" -ne 0 ]; then
                echo "not ok - $name: merge into $seed failed (exit $mrc); see build/fuzz/$name.merge.log"
                status=1
            else
                echo "   merged into $seed: $((after - before)) new input(s) adding coverage, $after in all"
            fi
        fi
    fi
done
exit $status

#!/usr/bin/env bash
# bench/profile.sh - the two exact hot-path figures `make bench` cannot give:
#   instructions per keep-alive request in Gatehouse's own code (valgrind --tool=callgrind),
#   system calls per keep-alive request (strace -c -f).
# Both are counts, not timings, so they repeat from run to run and a change to the hot path
# states them before and after (DESIGN.md, "Measure instead of guessing").
#
#   bench/profile.sh [GATEHOUSE_BINARY]      default build/release/gatehouse
#   PROFILE_N=2000 PROFILE_PATH=/1k          requests measured (the difference of two runs,
#                                            N and 2N, so start-up and shutdown cancel out)
#   PROFILE_GH_EXTRA='request_header set X-Real-IP $remote_addr;'
#                                            directives added to the server block
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GH=${1:-$ROOT/build/release/gatehouse}
N=${PROFILE_N:-2000}
P=${PROFILE_PATH:-/1k}
OUT=$ROOT/build/bench/profile
mkdir -p "$OUT"
for t in valgrind strace cc curl; do command -v $t >/dev/null || { echo "profile: $t not found" >&2; exit 1; }; done
cc -O2 -o "$OUT/origin" "$ROOT/bench/origin.c"
cc -O2 -o "$OUT/seq" "$ROOT/bench/seq.c"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OPORT=$(free_port)
"$OUT/origin" "$OPORT" >"$OUT/origin.log" 2>&1 &
OPID=$!
trap 'kill $OPID 2>/dev/null; wait 2>/dev/null' EXIT
for i in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$OPORT$P" && break; sleep 0.05; done

conf() { # port
    cat >"$OUT/gh.conf" <<CONF
threads 1;
access_log off;
error_log $OUT/gh.error.log error;
upstream origin { server 127.0.0.1:$OPORT; keepalive 64; }
server { listen 127.0.0.1:$1; proxy origin; ${PROFILE_GH_EXTRA:-} }
CONF
}

wait_up() { for i in $(seq 400); do curl -sf -o /dev/null "http://127.0.0.1:$1$P" && return 0; sleep 0.05; done; return 1; }

# callgrind: total Ir of a run with N requests and one with 2N; the difference / N
ir_run() { # count
    local port; port=$(free_port); conf "$port"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1.out" "$GH" -c "$OUT/gh.conf" \
        >"$OUT/cg.$1.log" 2>&1 &
    local pid=$!
    wait_up "$port" || { echo "profile: gatehouse did not start under valgrind" >&2; cat "$OUT/cg.$1.log" >&2; exit 1; }
    "$OUT/seq" "$port" "$1" "$P" >/dev/null
    kill -TERM $pid; wait $pid || true
    awk '/^summary:/ {print $2}' "$OUT/cg.$1.out"
}
a=$(ir_run "$N")
b=$(ir_run $((2 * N)))
echo "instructions per request: $(( (b - a) / N ))  (callgrind, $P keep-alive, $N requests)"

# strace: syscalls during N requests, per request
port=$(free_port); conf "$port"
"$GH" -c "$OUT/gh.conf" >"$OUT/st.log" 2>&1 &
pid=$!
wait_up "$port"
"$OUT/seq" "$port" 200 "$P" >/dev/null # warm the upstream pool
strace -c -f -qq -o "$OUT/strace.txt" -p "$pid" &
spid=$!
sleep 1
"$OUT/seq" "$port" "$N" "$P" >/dev/null
sleep 0.5
kill -INT $spid; wait $spid 2>/dev/null || true
kill -TERM $pid; wait $pid || true
awk -v n="$N" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
        tot += $4; if ($4 / n >= 0.01) printf "  %-14s %.2f\n", $NF, $4 / n }
    END { printf "syscalls per request: %.2f  (strace -c -f, %d requests)\n", tot / n, n }' \
    "$OUT/strace.txt"

#!/usr/bin/env bash
# `make bench`: Gatehouse vs nginx vs HAProxy vs a floor relay, side by side, in one run.
# See bench/README.md for the method and how to read the table.
#
#   BENCH_ROUNDS=3     rounds; each runs every row for every proxy in turn, the order rotating
#                      each round (A B C D, then B C D A, ...)
#   BENCH_SECONDS=5    seconds per wrk run
#   BENCH_IDLE=10000   idle keep-alive connections for the memory row (0 skips it)
#   GATEHOUSE=path     gatehouse binary (default build/release/gatehouse)
#   BENCH_NICE=-20     niceness for everything the bench runs, so builds or fuzzers running beside it
#                      get ~1% of a CPU instead of half (needs root/CAP_SYS_NICE; ignored otherwise)
#   BENCH_ROWS="..."  run only these rows (ids: ka1k50 ka1k1000 ka100k50 close1k50); default all
#   BENCH_GH_EXTRA="..." directives added to Gatehouse's server block (e.g.
#                      'request_header set X-Real-IP $remote_addr;'), to measure what a feature costs
#   BENCH_QUIET_WAIT=0 before each run, wait up to this many seconds for other processes on the
#                      machine to go below 10% of a CPU; busy runs are flagged in any case
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$PATH:/usr/sbin:/sbin # nginx and haproxy live there; not always on a non-root PATH
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
IDLE_N=${BENCH_IDLE:-10000}
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
NICE=${BENCH_NICE:--20}
GH_BIN=${GATEHOUSE:-$ROOT/build/release/gatehouse}
OUT=$ROOT/build/bench
DIR=$OUT/run
RESULTS=$OUT/results.txt
CFLAGS="-O2 -Wall -Wextra -Werror"
HZ=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S' # for `time` around wrk

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 20000 ] || echo "bench: warning: open-file limit $(ulimit -n) < 20000; the idle row may fail" >&2

die() { echo "bench: $*" >&2; exit 1; }
for t in wrk nginx haproxy taskset curl cc; do
    command -v "$t" >/dev/null || die "$t not found (run scripts/deps.sh bench)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: the proxy alone on CPU0, wrk and the origin on CPU1"
# this script and everything it starts without an explicit taskset (curl, awk, ...) stay off CPU0
taskset -pc 1 $$ >/dev/null
# and it all runs at high priority (inherited), so other work on a shared machine disturbs it less
NICED=$(renice -n "$NICE" -p $$ >/dev/null 2>&1 && echo "nice $NICE" || echo "nice $(nice)")

# ---- build the helpers ---------------------------------------------------------------------------
mkdir -p "$OUT" && rm -rf "$DIR" && mkdir -p "$DIR"
for p in origin relay idle; do
    cc $CFLAGS -o "$OUT/$p" "$ROOT/bench/$p.c" || die "cannot build bench/$p.c"
done

# ---- ports: ten consecutive free ones in 18000-18990 ---------------------------------------------
listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
BASE=
for b in $(seq 18000 10 18990); do
    busy=0
    for i in $(seq 0 9); do grep -qx "$((b + i))" <<<"$listening" && { busy=1; break; }; done
    [ $busy = 0 ] && { BASE=$b; break; }
done
[ -n "$BASE" ] || die "no free port block in 18000-18999"
ORIGIN_PORT=$BASE

# ---- process bookkeeping: everything we start is stopped on exit ---------------------------------
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE # e.g. `run.sh | head`: without this bash would die without cleaning up

stop_pid() { # stop one process we started (and forget it)
    local p=$1 i
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    local keep=()
    for i in "${PIDS[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
    PIDS=("${keep[@]}")
}

wait_http() { # port pid -> 0 once GET /1k answers 200 through it
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/1k")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}

render() { # template port -> config file path
    local f=$DIR/$(basename "$1" .in).$2
    local extra=${BENCH_GH_EXTRA:-}
    sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$2|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@GH_EXTRA@|${extra//|/\\|}|g" "$1" >"$f"
    echo "$f"
}

# start_proxy NAME PORT -> sets SPID (the pid to stop) and MPID (the pid to measure), or returns 1
start_proxy() {
    local name=$1 port=$2 cfg log=$DIR/$1-$2.out
    SPID= MPID=
    case $name in
    gatehouse)
        [ -x "$GH_BIN" ] || { echo "not built ($GH_BIN)" >"$log"; return 1; }
        cfg=$(render "$ROOT/bench/gatehouse.conf.in" "$port")
        taskset -c 0 "$GH_BIN" -c "$cfg" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    nginx)
        cfg=$(render "$ROOT/bench/nginx.conf.in" "$port")
        mkdir -p "$DIR/nginx-$port.tmp"
        taskset -c 0 nginx -e "$DIR/nginx-$port.error.log" -c "$cfg" >"$log" 2>&1 &
        SPID=$!
        ;;
    haproxy)
        cfg=$(render "$ROOT/bench/haproxy.cfg.in" "$port")
        taskset -c 0 haproxy -db -f "$cfg" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    floor)
        taskset -c 0 "$OUT/relay" "$port" "$ORIGIN_PORT" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    esac
    PIDS+=("$SPID")
    if ! wait_http "$port" "$SPID"; then
        stop_pid "$SPID"
        return 1
    fi
    if [ "$name" = nginx ]; then # measure the worker, not the master
        MPID=$(pgrep -P "$SPID" | head -1)
        [ -n "$MPID" ] || { stop_pid "$SPID"; return 1; }
    fi
    return 0
}

cpu_ticks() { # pid -> utime+stime in clock ticks (fields 14, 15; comm may contain spaces)
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    s=${s##*) }
    set -- $s
    echo $((${12} + ${13}))
}
cpu0_busy() { # CPU0 non-idle time in ticks: user nice system irq softirq (steal excluded)
    awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
all_busy() { # all CPUs' non-idle time in ticks
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---- what we compare -----------------------------------------------------------------------------
PROXIES=(gatehouse nginx haproxy floor)
PORT_OF_gatehouse=$((BASE + 1)) PORT_OF_nginx=$((BASE + 2)) PORT_OF_haproxy=$((BASE + 3)) PORT_OF_floor=$((BASE + 4))
MEMPORT_OF_gatehouse=$((BASE + 5)) MEMPORT_OF_nginx=$((BASE + 6)) MEMPORT_OF_haproxy=$((BASE + 7))
# row id | label | connections | path | extra wrk args
ROWS=(${BENCH_ROWS:-ka1k50 ka1k1000 ka100k50 close1k50})
declare -A LABEL=([ka1k50]="ka 1KiB 50c" [ka1k1000]="ka 1KiB 1000c" [ka100k50]="ka 100KiB 50c" [close1k50]="close 1KiB 50c")
declare -A CONNS=([ka1k50]=50 [ka1k1000]=1000 [ka100k50]=50 [close1k50]=50)
declare -A URLPATH=([ka1k50]=/1k [ka1k1000]=/1k [ka100k50]=/100k [close1k50]=/1k)
declare -A CLOSE=([ka1k50]=0 [ka1k1000]=0 [ka100k50]=0 [close1k50]=1)

declare -A MPID_OF SPID_OF AVAIL WHY
declare -A R_RPS R_P99 R_CPU R_BUSY R_OTHER M_BEFORE M_AFTER M_PER
OTHER_MAX=10 # % of a CPU that other processes may use during a run before it is flagged
NOTES=()

# ---- origin on CPU 1 -----------------------------------------------------------------------------
taskset -c 1 "$OUT/origin" "$ORIGIN_PORT" >"$DIR/origin.out" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_http "$ORIGIN_PORT" "$ORIGIN_PID" || die "origin did not start: $(cat "$DIR/origin.out")"

for px in "${PROXIES[@]}"; do
    port_var=PORT_OF_$px
    if start_proxy "$px" "${!port_var}"; then
        AVAIL[$px]=1 SPID_OF[$px]=$SPID MPID_OF[$px]=$MPID
    else
        AVAIL[$px]=0
        WHY[$px]=$(tail -c 300 "$DIR/$px-${!port_var}.out" 2>/dev/null | tr '\n' ' ')
        echo "bench: $px unavailable: ${WHY[$px]}" >&2
    fi
done
[ "${AVAIL[nginx]}" = 1 ] || die "nginx did not start: ${WHY[nginx]} (see $DIR)"

# ---- other load on the machine ------------------------------------------------------------------
other_now() { # % of a CPU used by processes other than ours over 0.3 s (ours are idle between runs)
    local a0 a1 t0 t1
    a0=$(all_busy) t0=$(date +%s%N)
    sleep 0.3
    a1=$(all_busy) t1=$(date +%s%N)
    echo $(((a1 - a0) * 100 * 1000000000 / HZ / (t1 - t0)))
}
wait_quiet() {
    local deadline=$(($(date +%s) + QUIET_WAIT)) o
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    while o=$(other_now); [ "$o" -gt "$OTHER_MAX" ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bench: machine still busy (${o}% of a CPU used by others); running anyway" >&2
            return 0
        fi
        [ -z "${QUIET_SAID:-}" ] && echo "bench: waiting for the machine to go quiet (${o}% of a CPU used by others)" >&2
        QUIET_SAID=1
        sleep 1
    done
    QUIET_SAID=
}

# ---- one wrk run ---------------------------------------------------------------------------------
to_ms() { # wrk latency like 812.00us / 1.23ms / 2.01s -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

run_wrk() { # proxy row round
    local px=$1 row=$2 rnd=$3 port_var=PORT_OF_$1 key="$2|$1|$3"
    local port=${!port_var} pid=${MPID_OF[$1]} log=$DIR/wrk.$1.$2.$3.txt
    local hdr=() t0 t1 c0 c1 b0 b1 a0 a1 o0 o1 reqs rps p99 errs non2xx other
    [ "${CLOSE[$row]}" = 1 ] && hdr=(-H "Connection: close")
    if ! kill -0 "$pid" 2>/dev/null; then
        NOTES+=("$px $row round $rnd: proxy is not running (crashed earlier?)")
        return
    fi
    c0=$(cpu_ticks "$pid")
    o0=$(cpu_ticks "$ORIGIN_PID")
    a0=$(all_busy)
    b0=$(cpu0_busy)
    t0=$(date +%s.%N)
    # bash's `time` gives wrk's own user+sys, so we can tell how much CPU other processes took
    { time taskset -c 1 wrk -t1 -c"${CONNS[$row]}" -d"${SECS}s" --latency "${hdr[@]}" \
        "http://127.0.0.1:$port${URLPATH[$row]}" >"$log" 2>&1; } 2>"$log.time"
    t1=$(date +%s.%N)
    b1=$(cpu0_busy)
    a1=$(all_busy)
    o1=$(cpu_ticks "$ORIGIN_PID")
    c1=$(cpu_ticks "$pid")
    if ! kill -0 "$pid" 2>/dev/null || [ "$c1" -lt 0 ]; then
        NOTES+=("$px $row round $rnd: proxy died during the run (see $log)")
        return
    fi
    reqs=$(awk '/ requests in / {print $1}' "$log")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$log")
    p99=$(awk '$1 == "99%" {print $2}' "$log")
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { NOTES+=("$px $row round $rnd: no requests completed (see $log)"); return; }
    R_RPS[$key]=$rps
    R_P99[$key]=$(to_ms "$p99")
    R_CPU[$key]=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
    R_BUSY[$key]=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", d / hz / (t1 - t0) * 100 }')
    # CPU used by anything but the proxy, the origin and wrk, in % of one CPU
    other=$(awk -v a=$((a1 - a0 - (c1 - c0) - (o1 - o0))) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        '{ printf "%.0f", (a / hz - $1 - $2) / (t1 - t0) * 100 }' "$log.time")
    R_OTHER[$key]=$other
    echo "$key cpu_us_per_req=${R_CPU[$key]} rps=$rps p99_ms=${R_P99[$key]} cpu0_busy=${R_BUSY[$key]} other=$other" >>"$DIR/runs.txt"
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$log")
    errs=$(grep 'Socket errors' "$log")
    if [ "${CLOSE[$row]}" = 1 ] && [ -n "$errs" ]; then
        # wrk counts every server-side close as a read error; only the other kinds matter here
        errs=$(awk '/Socket errors/ { gsub(",", ""); if ($4 + $8 + $10 > 0) print }' "$log")
    fi
    [ -n "$non2xx" ] && NOTES+=("$px $row round $rnd: $non2xx non-2xx/3xx responses")
    [ -n "$errs" ] && NOTES+=("$px $row round $rnd:$(echo "$errs" | sed 's/^ *//; s/Socket errors://')")
}

# ---- memory: RSS before/after N idle keep-alive connections, fresh instance ----------------------
run_idle() { # proxy round
    local px=$1 rnd=$2 port_var=MEMPORT_OF_$1 key="|$1|$2" holder before after ok line i
    local port=${!port_var}
    start_proxy "$px" "$port" || { NOTES+=("$px idle round $rnd: did not start"); return; }
    local spid=$SPID mpid=$MPID
    # warm up: a few connections and requests so pools and lazy init are done, then let them go
    taskset -c 1 wrk -t1 -c10 -d1s "http://127.0.0.1:$port/1k" >/dev/null 2>&1
    sleep 0.5
    before=$(rss_kib "$mpid")
    taskset -c 1 "$OUT/idle" "$port" "$IDLE_N" >"$DIR/idle.$px.$rnd.txt" 2>&1 &
    holder=$!
    PIDS+=("$holder")
    for i in $(seq 600); do # up to 60 s
        line=$(grep '^ready' "$DIR/idle.$px.$rnd.txt" 2>/dev/null) && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.1
    done
    sleep 0.5
    after=$(rss_kib "$mpid")
    ok=$(awk '{print $2}' <<<"$line")
    stop_pid "$holder"
    stop_pid "$spid"
    if [ -z "$ok" ] || [ "$ok" -eq 0 ] || [ -z "$before" ] || [ -z "$after" ]; then
        NOTES+=("$px idle round $rnd: failed (${line:-no ready line}; see $DIR/idle.$px.$rnd.txt)")
        return
    fi
    [ "$ok" -lt "$IDLE_N" ] && NOTES+=("$px idle round $rnd: only $ok of $IDLE_N connections set up")
    M_BEFORE[$key]=$before M_AFTER[$key]=$after
    M_PER[$key]=$(((after - before) * 1024 / ok))
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---- the run -------------------------------------------------------------------------------------
START=$(date +%s)
echo "bench: ports $BASE-$((BASE + 9)), $ROUNDS rounds x ${SECS}s per run; proxies on CPU0, wrk+origin on CPU1" >&2
# warm-up pass (not recorded): caches, upstream pools, page faults
for px in "${PROXIES[@]}"; do
    [ "${AVAIL[$px]}" = 1 ] || continue
    port_var=PORT_OF_$px
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:${!port_var}/1k" >/dev/null 2>&1
done
for rnd in $(seq "$ROUNDS"); do
    # the order rotates every round (A B C D, B C D A, ...): whoever runs first in a row inherits
    # the previous row's aftermath (e.g. ~100k TIME_WAIT sockets after the close row), so no
    # proxy may always be the one that does
    ORDER=("${PROXIES[@]:$(((rnd - 1) % ${#PROXIES[@]}))}" "${PROXIES[@]:0:$(((rnd - 1) % ${#PROXIES[@]}))}")
    # a discarded 2 s run first: the first measured run of a round was seen to cost ~30% more
    # than the same proxy's later runs (whatever the machine did in between is paid there)
    for px in "${ORDER[@]}"; do
        [ "${AVAIL[$px]}" = 1 ] || continue
        port_var=PORT_OF_$px
        taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:${!port_var}/1k" >/dev/null 2>&1
        break
    done
    for row in "${ROWS[@]}"; do
        for px in "${ORDER[@]}"; do
            [ "${AVAIL[$px]}" = 1 ] || continue
            [ "$px" = floor ] && [ "${CLOSE[$row]}" = 1 ] && continue
            echo "bench: round $rnd/$ROUNDS  ${LABEL[$row]}  $px" >&2
            wait_quiet
            run_wrk "$px" "$row" "$rnd"
        done
    done
done
# the memory rows last: tearing down 10,000 connections leaves the kernel busy for a while, which
# would be charged to whichever proxy ran next
if [ "$IDLE_N" -gt 0 ]; then
    for rnd in $(seq "$ROUNDS"); do
        for px in gatehouse nginx haproxy; do
            [ "${AVAIL[$px]}" = 1 ] || continue
            echo "bench: round $rnd/$ROUNDS  idle ${IDLE_N} conns  $px" >&2
            run_idle "$px" "$rnd"
        done
    done
fi
ELAPSED=$(($(date +%s) - START))

# ---- report --------------------------------------------------------------------------------------
med_of() { # array-name row proxy
    local -n arr=$1
    local r vals=""
    for r in $(seq "$ROUNDS"); do vals+=" ${arr[$2|$3|$r]:-}"; done
    median <<<"$vals"
}
ratio() { # value nginx-value
    [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' || echo "-"
}
fmt() { [ -n "$1" ] && printf "$2" "$1" || echo "-"; }

gh_ver="unavailable"
[ "${AVAIL[gatehouse]}" = 1 ] && gh_ver="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty)"
{
    echo "Gatehouse bench  $(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -r)  $(getconf _NPROCESSORS_ONLN) CPUs  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "median of $ROUNDS rounds x ${SECS}s; proxy alone on CPU0, wrk (1 thread) + origin on CPU1; one worker each; $NICED"
    echo "gatehouse $gh_ver | $(nginx -v 2>&1 | sed 's/.*: //') | HAProxy $(haproxy -v | awk 'NR==1 {print $3}') | floor = bench/relay.c | $(wrk -v 2>&1 | awk 'NR==1 {print $1, $2}')"
    echo "/ngx = proxy / nginx: req/s higher is better, p99 and CPU lower. CPU us/req = the proxy's utime+stime"
    echo "per request. CPU0 busy% < ~95 means the proxy was not the bottleneck (wrk+origin on CPU1 were)"
    echo
    F="%-15s %-10s %8s %6s %8s %6s %8s %6s %6s\n"
    printf "$F" "" "" "" "" "" "" "CPU" "" "CPU0"
    printf "$F" row proxy "req/s" "/ngx" "p99 ms" "/ngx" "us/req" "/ngx" "busy%"
    printf '%.0s-' $(seq 80); echo
    for row in "${ROWS[@]}"; do
        n_rps=$(med_of R_RPS "$row" nginx) n_p99=$(med_of R_P99 "$row" nginx)
        n_cpu=$(med_of R_CPU "$row" nginx)
        label=${LABEL[$row]}
        for px in "${PROXIES[@]}"; do
            if [ "$px" = floor ] && [ "${CLOSE[$row]}" = 1 ]; then
                printf "$F" "$label" "$px" - - - - - - -
            elif [ "${AVAIL[$px]}" != 1 ]; then
                printf "%-15s %-10s %s\n" "$label" "$px" "$px: unavailable"
            else
                rps=$(med_of R_RPS "$row" "$px") p99=$(med_of R_P99 "$row" "$px")
                cpu=$(med_of R_CPU "$row" "$px") busy=$(med_of R_BUSY "$row" "$px")
                printf "$F" "$label" "$px" \
                    "$(fmt "$rps" %.0f)" "$(ratio "$rps" "$n_rps")" "$(fmt "$p99" %.2f)" "$(ratio "$p99" "$n_p99")" \
                    "$(fmt "$cpu" %.2f)" "$(ratio "$cpu" "$n_cpu")" \
                    "$(fmt "$busy" %.0f)"
            fi
            label=""
        done
    done
    echo
    if [ "$IDLE_N" -gt 0 ]; then
        printf "%-15s %-10s %12s %12s %14s %7s\n" "idle memory" proxy "RSS before" "RSS after" "bytes/idle conn" "/nginx"
        printf '%.0s-' $(seq 76); echo
        n_per=$(med_of M_PER "" nginx 2>/dev/null)
        label="$IDLE_N idle"
        for px in "${PROXIES[@]}"; do
            if [ "$px" = floor ]; then
                printf "%-15s %-10s %12s %12s %14s %7s\n" "$label" "$px" - - - -
            elif [ "${AVAIL[$px]}" != 1 ]; then
                printf "%-15s %-10s %s\n" "$label" "$px" "$px: unavailable"
            else
                b=$(med_of M_BEFORE "" "$px") a=$(med_of M_AFTER "" "$px") per=$(med_of M_PER "" "$px")
                printf "%-15s %-10s %12s %12s %14s %7s\n" "$label" "$px" "$(fmt "$b" '%.0f KiB')" "$(fmt "$a" '%.0f KiB')" \
                    "$(fmt "$per" %.0f)" "$(ratio "$per" "$n_per")"
            fi
            label=""
        done
        echo
    fi
    if [ "${AVAIL[gatehouse]}" = 1 ]; then
        g=$(med_of R_CPU ka1k50 gatehouse) f=$(med_of R_CPU ka1k50 floor)
        echo "gatehouse / floor CPU ratio (ka 1KiB 50c): $(ratio "$g" "$f" | sed 's/x$//')  (target <= 1.10)"
        # the same, paired within each round (gatehouse and floor run minutes apart at most, so a
        # machine that drifts between rounds moves both): one ratio per round and their median
        pr=""
        for r in $(seq "$ROUNDS"); do
            g=${R_CPU[ka1k50|gatehouse|$r]:-} f=${R_CPU[ka1k50|floor|$r]:-}
            [ -n "$g" ] && [ -n "$f" ] && pr+=" $(awk -v a="$g" -v b="$f" 'BEGIN { printf "%.2f", a / b }')"
        done
        [ -n "$pr" ] && echo "  per round:$pr; median $(median <<<"$pr")"
    else
        echo "gatehouse / floor CPU ratio (ka 1KiB 50c): - (gatehouse: unavailable: ${WHY[gatehouse]:-})"
    fi
    for px in "${PROXIES[@]}"; do
        [ "${AVAIL[$px]}" = 1 ] || [ "$px" = gatehouse ] || echo "$px: unavailable: ${WHY[$px]:-}"
    done
    # other processes on the machine (builds, fuzzers, tests) distort everything: say so
    others=$(printf '%s\n' "${R_OTHER[@]}")
    if [ -n "$others" ]; then
        o_med=$(median <<<"$others") o_max=$(sort -g <<<"$others" | tail -1)
        o_bad=$(awk -v m="$OTHER_MAX" '$1 > m' <<<"$others" | wc -l)
        echo "other processes during the runs: median ${o_med}%, max ${o_max}% of a CPU"
        [ "$o_bad" -gt 0 ] && echo "WARNING: in $o_bad of $(wc -l <<<"$others") runs other processes used more than ${OTHER_MAX}% of a CPU: those numbers are unreliable; rerun on a quiet machine"
    fi
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "notes:"
        printf '  %s\n' "${NOTES[@]}"
    fi
    echo
    echo "took ${ELAPSED}s; raw wrk output and logs in ${DIR#$ROOT/}/"
} | tee "$RESULTS"

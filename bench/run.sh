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
#   BENCH_ROWS="..."  run only these rows; default all. ids: ka1k50 ka1k1000 ka100k50 close1k50
#                      (plain HTTP), lc4ka1k50 (4 origins, least_conn), tlska1k50 tlska100k50
#                      tlsresume50 tlsfullec tlsfullrsa (TLS), cache1k50 cache100k50 (hits of a warm
#                      object in Gatehouse's cache and nginx's proxy_cache, /c/1k, /c/100k) and fwd1k50
#                      tunnel1 tunnel100 (forward proxy, bench/forward.sh); the words `plain`, `lb`,
#                      `tls`, `cache` and `forward` stand for each group
#   BENCH_TLS_CLIENTS=2 httperf processes in parallel for the tls full rows (one connection each)
#   BENCH_TLS_LOG=0    1: the TLS instances log $ssl_session_reused (or HAProxy's ssl_fc_is_resumed)
#                      per request and the notes count full and resumed handshakes per run (a check
#                      of the clients; logging costs CPU, so those runs' figures are not comparable)
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
TLS_CLIENTS=${BENCH_TLS_CLIENTS:-2}
TLS_LOG=${BENCH_TLS_LOG:-0}
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
# the forward proxy's rows (fwd1k50 tunnel1 tunnel100, the word `forward`) and their functions
source "$ROOT/bench/forward.sh"
# ---- rows ---------------------------------------------------------------------------------------
# LABEL: first column; CONNS: connections (for httperf: processes, one connection each); URLPATH;
# CLOSE: 1 = `Connection: close` on every request; TLS: which certificate's listener of the proxy's
# TLS instance (ec = ECDSA P-256, rsa = RSA 2048), empty = the plain instance; TOOL: wrk or httperf
PLAIN_ROWS="ka1k50 ka1k1000 ka100k50 close1k50"
LB_ROWS="lc4ka1k50"
TLS_ROWS="tlska1k50 tlska100k50 tlsresume50 tlsfullec tlsfullrsa"
CACHE_ROWS="cache1k50 cache100k50"
ROWS=()
for r in ${BENCH_ROWS:-$PLAIN_ROWS $LB_ROWS $TLS_ROWS $CACHE_ROWS forward}; do
    case $r in
    plain) ROWS+=($PLAIN_ROWS) ;;
    lb) ROWS+=($LB_ROWS) ;;
    tls) ROWS+=($TLS_ROWS) ;;
    cache) ROWS+=($CACHE_ROWS) ;;
    forward) FWD_SEL+=($FWD_ROWS) ;;
    fwd1k50 | tunnel1 | tunnel100) FWD_SEL+=("$r") ;; # $FWD_ROWS
    *) [[ " $PLAIN_ROWS $LB_ROWS $TLS_ROWS $CACHE_ROWS " == *" $r "* ]] ||
           die "unknown row '$r' in BENCH_ROWS (ids: $PLAIN_ROWS $LB_ROWS $TLS_ROWS $CACHE_ROWS $FWD_ROWS, or plain, lb, tls, cache, forward)"
       ROWS+=("$r") ;;
    esac
done
declare -A LABEL=([ka1k50]="ka 1KiB 50c" [ka1k1000]="ka 1KiB 1000c" [ka100k50]="ka 100KiB 50c" [close1k50]="close 1KiB 50c" [lc4ka1k50]="lc4 ka 1KiB 50c"
    [tlska1k50]="tls ka 1KiB 50c" [tlska100k50]="tls ka 100KiB 50c" [tlsresume50]="tls resumed 50c" [tlsfullec]="tls full ECDSA" [tlsfullrsa]="tls full RSA"
    [cache1k50]="cache hit 1KiB" [cache100k50]="cache hit 100KiB")
declare -A CONNS=([ka1k50]=50 [ka1k1000]=1000 [ka100k50]=50 [close1k50]=50 [lc4ka1k50]=50
    [tlska1k50]=50 [tlska100k50]=50 [tlsresume50]=50 [tlsfullec]=$TLS_CLIENTS [tlsfullrsa]=$TLS_CLIENTS
    [cache1k50]=50 [cache100k50]=50)
declare -A URLPATH=([ka1k50]=/1k [ka1k1000]=/1k [ka100k50]=/100k [close1k50]=/1k [lc4ka1k50]=/1k
    [tlska1k50]=/1k [tlska100k50]=/100k [tlsresume50]=/1k [tlsfullec]=/1k [tlsfullrsa]=/1k
    [cache1k50]=/c/1k [cache100k50]=/c/100k)
declare -A CLOSE=([ka1k50]=0 [ka1k1000]=0 [ka100k50]=0 [close1k50]=1 [lc4ka1k50]=0
    [tlska1k50]=0 [tlska100k50]=0 [tlsresume50]=1 [tlsfullec]=1 [tlsfullrsa]=1
    [cache1k50]=0 [cache100k50]=0)
# CACHED: the proxy's cache answers (the floor has none, and HAProxy's cache did not store the
# bench origin's responses, which carry no freshness: both show `-`). Varnish (when installed)
# takes part in these rows only.
declare -A CACHED=([cache1k50]=1 [cache100k50]=1)
declare -A TLS=([tlska1k50]=ec [tlska100k50]=ec [tlsresume50]=ec [tlsfullec]=ec [tlsfullrsa]=rsa)
declare -A TOOL=([tlsfullec]=httperf [tlsfullrsa]=httperf)
# the lb rows: a third instance of each proxy balancing over four origins (NAME-lb templates)
declare -A LB=([lc4ka1k50]=1)
WANT_TLS=0 WANT_HTTPERF=0 WANT_LB=0
WANT_CACHE=0
# the reverse-proxy instances below serve these rows and the memory row; not started without them
MAIN_WANTED=1
[ ${#ROWS[@]} -eq 0 ] && [ "$IDLE_N" -eq 0 ] && MAIN_WANTED=0
for r in "${ROWS[@]}"; do
    [ -n "${CACHED[$r]:-}" ] && WANT_CACHE=1
    [ -n "${TLS[$r]:-}" ] && WANT_TLS=1
    [ -n "${LB[$r]:-}" ] && WANT_LB=1
    [ "${TOOL[$r]:-wrk}" = httperf ] && WANT_HTTPERF=1
done

for t in wrk nginx haproxy taskset curl cc; do
    command -v "$t" >/dev/null || die "$t not found (run scripts/deps.sh bench)"
done
[ $WANT_TLS = 0 ] || command -v openssl >/dev/null || die "openssl not found (run scripts/deps.sh bench)"
[ $WANT_HTTPERF = 0 ] || command -v httperf >/dev/null || die "httperf not found (run scripts/deps.sh bench)"
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
# the cache rows also report the store's hit ratio against LRU (bench/cache_hits.c)
if [ $WANT_CACHE = 1 ]; then
    # the store with its disk tier and what they use (the store is the real one, not a model)
    cc $CFLAGS -D_GNU_SOURCE -I"$ROOT/src" -o "$OUT/cache_hits" "$ROOT/bench/cache_hits.c" "$ROOT"/src/cache/*.c \
        "$ROOT/src/core/common.c" "$ROOT/src/core/log.c" "$ROOT/src/http/fields.c" "$ROOT/src/http/h1.c" \
        -lpthread -lm || die "cannot build bench/cache_hits.c"
fi

# ---- TLS: a fresh self-signed certificate of each kind, in the run directory only ----------------
# (made at every run, so nothing secret is committed; the clients do not verify it)
if [ $WANT_TLS = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=bench.test -keyout "$DIR/ec.key" -out "$DIR/ec.pem" >"$DIR/openssl.out" 2>&1 &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
            -subj /CN=bench.test -keyout "$DIR/rsa.key" -out "$DIR/rsa.pem" >>"$DIR/openssl.out" 2>&1 ||
        die "cannot make the test certificates: $(cat "$DIR/openssl.out")"
    for k in ec rsa; do cat "$DIR/$k.pem" "$DIR/$k.key" >"$DIR/$k.haproxy.pem"; done # HAProxy's crt
fi

# ---- ports: thirty consecutive free ones in 18000-18999 -------------------------------------------
listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
BASE=
for b in $(seq 18000 30 18970); do
    busy=0
    for i in $(seq 0 29); do grep -qx "$((b + i))" <<<"$listening" && { busy=1; break; }; done
    [ $busy = 0 ] && { BASE=$b; break; }
done
[ -n "$BASE" ] || die "no free port block in 18000-18999"
ORIGIN_PORT=$BASE
# the lb rows' three other origins
ORIGIN2_PORT=$((BASE + 8)) ORIGIN3_PORT=$((BASE + 9)) ORIGIN4_PORT=$((BASE + 10))

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

wait_http() { # port pid [scheme] -> 0 once GET /1k answers 200 through it
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        [ "$(curl -sk -o /dev/null -m 1 -w '%{http_code}' "${3:-http}://127.0.0.1:$1/1k")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}

render() { # template port [rsa-port] -> config file path
    local f=$DIR/$(basename "$1" .in).$2
    local extra=${BENCH_GH_EXTRA:-} tlslog=""
    # BENCH_TLS_LOG=1: one line per request saying whether its TLS session was resumed
    case $(basename "$1") in
    gatehouse-tls.*) tlslog="log_format tlsreuse 'tlsreuse \$ssl_session_reused';\naccess_log @DIR@/@PORT@.tlsreuse.log tlsreuse;" ;;
    nginx-tls.*) tlslog="log_format tlsreuse 'tlsreuse \$ssl_session_reused';\n    access_log @DIR@/@PORT@.tlsreuse.log tlsreuse;" ;;
    haproxy-tls.*) tlslog='log stdout format raw local0\n    log-format "tlsreuse %[ssl_fc_is_resumed]"' ;;
    esac
    if [ "$TLS_LOG" != 1 ]; then
        case $(basename "$1") in haproxy-*) tlslog="" ;; *) tlslog="access_log off;" ;; esac
    fi
    sed -e "s|@TLS_LOG@|$tlslog|g" -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$2|g" -e "s|@RSA_PORT@|${3:-}|g" \
        -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@ORIGIN2_PORT@|$ORIGIN2_PORT|g" \
        -e "s|@ORIGIN3_PORT@|$ORIGIN3_PORT|g" -e "s|@ORIGIN4_PORT@|$ORIGIN4_PORT|g" \
        -e "s|@GH_EXTRA@|${extra//|/\\|}|g" "$1" >"$f"
    echo "$f"
}

# start_proxy NAME PORT [RSA_PORT] [VARIANT] -> sets SPID (the pid to stop) and MPID (the pid to
# measure), or returns 1. With RSA_PORT: the proxy's TLS instance (NAME-tls config), ECDSA on PORT,
# RSA on RSA_PORT. VARIANT lb: the instance balancing over four origins (NAME-lb config)
start_proxy() {
    local name=$1 port=$2 rsaport=${3:-} cfg log=$DIR/$1-$2.out tpl=$1 scheme=http
    [ -n "$rsaport" ] && tpl=$1-tls scheme=https
    [ "${4:-}" = lb ] && tpl=$1-lb
    SPID= MPID=
    case $name in
    gatehouse)
        [ -x "$GH_BIN" ] || { echo "not built ($GH_BIN)" >"$log"; return 1; }
        cfg=$(render "$ROOT/bench/$tpl.conf.in" "$port" "$rsaport")
        taskset -c 0 "$GH_BIN" -c "$cfg" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    nginx)
        cfg=$(render "$ROOT/bench/$tpl.conf.in" "$port" "$rsaport")
        mkdir -p "$DIR/nginx-$port.tmp"
        taskset -c 0 nginx -e "$DIR/nginx-$port.error.log" -c "$cfg" >"$log" 2>&1 &
        SPID=$!
        ;;
    haproxy)
        cfg=$(render "$ROOT/bench/$tpl.cfg.in" "$port" "$rsaport")
        taskset -c 0 haproxy -db -f "$cfg" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    floor)
        taskset -c 0 "$OUT/relay" "$port" "$ORIGIN_PORT" >"$log" 2>&1 &
        SPID=$! MPID=$!
        ;;
    varnish)
        command -v varnishd >/dev/null || { echo "varnishd not installed (apt-get install varnish)" >"$log"; return 1; }
        cfg=$(render "$ROOT/bench/varnish.vcl.in" "$port")
        mkdir -p "$DIR/varnish-$port" && chmod 755 "$DIR/varnish-$port" "$cfg"
        taskset -c 0 varnishd -F -a "127.0.0.1:$port" -f "$cfg" -n "$DIR/varnish-$port" -s malloc,64m \
            -p thread_pools=1 >"$log" 2>&1 &
        SPID=$!
        ;;
    esac
    PIDS+=("$SPID")
    if ! wait_http "$port" "$SPID" $scheme || { [ -n "$rsaport" ] && ! wait_http "$rsaport" "$SPID" $scheme; }; then
        stop_pid "$SPID"
        return 1
    fi
    if [ "$name" = nginx ] || [ "$name" = varnish ]; then # measure the worker (cache) process
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
[ $WANT_CACHE = 1 ] && PROXIES+=(varnish)
PORT_OF_gatehouse=$((BASE + 1)) PORT_OF_nginx=$((BASE + 2)) PORT_OF_haproxy=$((BASE + 3)) PORT_OF_floor=$((BASE + 4))
PORT_OF_varnish=$((BASE + 27))
MEMPORT_OF_gatehouse=$((BASE + 5)) MEMPORT_OF_nginx=$((BASE + 6)) MEMPORT_OF_haproxy=$((BASE + 7))
# each proxy's TLS instance ("NAME-tls" below): ECDSA and RSA listeners
declare -A EC_PORT=([gatehouse]=$((BASE + 11)) [nginx]=$((BASE + 12)) [haproxy]=$((BASE + 13)))
declare -A RSA_PORT=([gatehouse]=$((BASE + 14)) [nginx]=$((BASE + 15)) [haproxy]=$((BASE + 16)))
# each proxy's lb instance ("NAME-lb")
declare -A LB_PORT=([gatehouse]=$((BASE + 17)) [nginx]=$((BASE + 18)) [haproxy]=$((BASE + 19)))

declare -A MPID_OF SPID_OF AVAIL WHY
declare -A R_RPS R_P99 R_CPU R_BUSY R_OTHER M_BEFORE M_AFTER M_PER
OTHER_MAX=10 # % of a CPU that other processes may use during a run before it is flagged
NOTES=()

# ---- origin on CPU 1 -----------------------------------------------------------------------------
taskset -c 1 "$OUT/origin" "$ORIGIN_PORT" >"$DIR/origin.out" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_http "$ORIGIN_PORT" "$ORIGIN_PID" || die "origin did not start: $(cat "$DIR/origin.out")"
ORIGIN_PIDS=("$ORIGIN_PID")
if [ $WANT_LB = 1 ]; then
    for op in $ORIGIN2_PORT $ORIGIN3_PORT $ORIGIN4_PORT; do
        taskset -c 1 "$OUT/origin" "$op" >"$DIR/origin-$op.out" 2>&1 &
        PIDS+=($!) ORIGIN_PIDS+=($!)
        wait_http "$op" $! || die "origin on $op did not start: $(cat "$DIR/origin-$op.out")"
    done
fi
origins_ticks() { # the origins' CPU together (they are not "other" load)
    local p t=0
    for p in "${ORIGIN_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
    echo $t
}

for px in "${PROXIES[@]}"; do
    port_var=PORT_OF_$px
    AVAIL[$px]=0
    if [ $MAIN_WANTED = 0 ]; then
        continue
    elif start_proxy "$px" "${!port_var}"; then
        AVAIL[$px]=1 SPID_OF[$px]=$SPID MPID_OF[$px]=$MPID
    else
        AVAIL[$px]=0
        WHY[$px]=$(tail -c 300 "$DIR/$px-${!port_var}.out" 2>/dev/null | tr '\n' ' ')
        echo "bench: $px unavailable: ${WHY[$px]}" >&2
    fi
done
[ $MAIN_WANTED = 0 ] || [ "${AVAIL[nginx]}" = 1 ] || die "nginx did not start: ${WHY[nginx]} (see $DIR)"
if [ $WANT_LB = 1 ]; then
    for px in gatehouse nginx haproxy; do
        if start_proxy "$px" "${LB_PORT[$px]}" "" lb; then
            AVAIL[$px-lb]=1 SPID_OF[$px-lb]=$SPID MPID_OF[$px-lb]=$MPID
        else
            AVAIL[$px-lb]=0
            WHY[$px-lb]=$(tail -c 300 "$DIR/$px-${LB_PORT[$px]}.out" 2>/dev/null | tr '\n' ' ')
            echo "bench: $px balancing four origins unavailable: ${WHY[$px-lb]}" >&2
        fi
    done
fi
if [ $WANT_TLS = 1 ]; then
    for px in gatehouse nginx haproxy; do
        if start_proxy "$px" "${EC_PORT[$px]}" "${RSA_PORT[$px]}"; then
            AVAIL[$px-tls]=1 SPID_OF[$px-tls]=$SPID MPID_OF[$px-tls]=$MPID
        else
            AVAIL[$px-tls]=0
            WHY[$px-tls]=$(tail -c 300 "$DIR/$px-${EC_PORT[$px]}.out" 2>/dev/null | tr '\n' ' ')
            echo "bench: $px with TLS unavailable: ${WHY[$px-tls]}" >&2
        fi
    done
fi

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

# the tls full rows: N httperf processes, each making one connection at a time (TLS handshake without
# a session to resume, one request with `Connection: close`), stopped with SIGINT after SECS (httperf
# then prints its totals). Their outputs are concatenated into LOG.
run_httperf() { # port processes path log
    local i hp=()
    for i in $(seq "$2"); do
        taskset -c 1 timeout -s INT "$SECS" httperf --hog --server 127.0.0.1 --port "$1" --ssl --ssl-no-reuse \
            --uri "$3" --add-header 'Connection: close\n' --num-conns 1000000000 --num-calls 1 --timeout 5 \
            >"$4.p$i" 2>&1 &
        hp+=($!)
    done
    wait "${hp[@]}" # not a bare `wait`: that would wait for the origin and the proxies too
    for i in $(seq "$2"); do cat "$4.p$i"; done >"$4"
    rm -f "$4".p*
}

tls_reuse_counts() { # proxy -> "full resumed": requests its TLS instance logged so far (BENCH_TLS_LOG=1)
    local f=$DIR/${EC_PORT[$1]}.tlsreuse.log
    [ "$1" = haproxy ] && f=$DIR/haproxy-${EC_PORT[$1]}.out
    sleep 0.2 # Gatehouse writes its log at the end of an event-loop turn
    awk '$1 == "tlsreuse" { if ($2 == "r" || $2 == "1") r++; else f++ } END { print f + 0, r + 0 }' "$f" 2>/dev/null || echo "0 0"
}

# what each TLS instance negotiates with an OpenSSL client (protocol, cipher, key exchange, signature
# per certificate), and whether it resumes sessions the way wrk asks it to in the resumed row: five
# connections one after the other, each offering the session (TLS 1.3: the ticket) that the previous
# connection ended with. A server that issues no new ticket on a resumed connection resumes only
# every other one, as would a browser's connections (TLS 1.3 clients use a ticket once). Below 90%
# gets a note: that proxy's resumed row measured partly full handshakes.
declare -A TLS_INFO
tls_probe() { # proxy
    local px=$1 port info="" i r=0 sess=() out
    rm -f "$DIR/$px".sess.*
    for port in "${EC_PORT[$px]}" "${RSA_PORT[$px]}"; do
        info+=$(taskset -c 1 timeout 5 openssl s_client -connect "127.0.0.1:$port" -brief </dev/null 2>&1 | awk -F': ' '
            /^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 } /^(Peer s|S)ignature type/ { g = $2 }
            /^(Server|Negotiated) Temp Key/ { split($2, a, ","); t = a[1] }
            END { printf "%s %s %s %s; ", p, c, t, g }')
    done
    for i in 1 2 3 4 5; do
        # a request and -ign_eof: s_client reads until the proxy closes, so it has the tickets
        out=$(printf 'GET /1k HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n' |
            taskset -c 1 timeout 5 openssl s_client -connect "127.0.0.1:${EC_PORT[$px]}" -ign_eof \
                "${sess[@]}" -sess_out "$DIR/$px.sess.$i" 2>&1 | grep -a -m1 -E '^(New|Reused), ')
        [ "$i" -gt 1 ] && [[ "$out" == Reused* ]] && r=$((r + 1))
        # s_client writes the session when a ticket arrives: none, and the next one has nothing to offer
        sess=()
        [ -s "$DIR/$px.sess.$i" ] && sess=(-sess_in "$DIR/$px.sess.$i")
    done
    TLS_INFO[$px]="${info}resumed $r of 4 chained reconnections"
    [ "$r" -ge 4 ] ||
        NOTES+=("$px: resumed only $r of 4 connections that each offered the previous one's session (openssl s_client -sess_in): its tls resumed row measured partly full handshakes")
}

run_wrk() { # proxy row round (the tls full rows run httperf instead of wrk)
    local px=$1 row=$2 rnd=$3 key="$2|$1|$3" inst=$1 scheme=http port_var=PORT_OF_$1 tool=${TOOL[$2]:-wrk}
    local port pid log=$DIR/wrk.$1.$2.$3.txt
    local hdr=() t0 t1 c0 c1 b0 b1 a0 a1 o0 o1 reqs rps p99 errs non2xx other l0 l1
    if [ -n "${TLS[$row]:-}" ]; then
        inst=$px-tls scheme=https
        if [ "${TLS[$row]}" = rsa ]; then port=${RSA_PORT[$px]}; else port=${EC_PORT[$px]}; fi
    elif [ -n "${INST[$row]:-}" ]; then # another instance of the proxy serves the row (forward.sh)
        inst=$px-${INST[$row]} port=${INST_PORT[$px-${INST[$row]}]}
    elif [ -n "${LB[$row]:-}" ]; then
        inst=$px-lb port=${LB_PORT[$px]}
    else
        port=${!port_var}
    fi
    pid=${MPID_OF[$inst]}
    [ "$tool" = httperf ] && log=$DIR/httperf.$1.$2.$3.txt
    [ "${CLOSE[$row]}" = 1 ] && hdr=(-H "Connection: close")
    [ -n "${SCRIPT[$row]:-}" ] && hdr+=(-s "${SCRIPT[$row]}")
    if ! kill -0 "$pid" 2>/dev/null; then
        NOTES+=("$px $row round $rnd: proxy is not running (crashed earlier?)")
        return
    fi
    [ "$TLS_LOG" = 1 ] && [ -n "${TLS[$row]:-}" ] && l0=$(tls_reuse_counts "$px")
    c0=$(cpu_ticks "$pid")
    o0=$(origins_ticks)
    a0=$(all_busy)
    b0=$(cpu0_busy)
    t0=$(date +%s.%N)
    # bash's `time` gives the client's own user+sys, so we can tell how much CPU other processes took
    if [ "$tool" = httperf ]; then
        { time run_httperf "$port" "${CONNS[$row]}" "${URLPATH[$row]}" "$log"; } 2>"$log.time"
    else
        { time taskset -c 1 wrk -t1 -c"${CONNS[$row]}" -d"${SECS}s" --latency "${hdr[@]}" \
            "$scheme://127.0.0.1:$port${URLPATH[$row]}" >"$log" 2>&1; } 2>"$log.time"
    fi
    t1=$(date +%s.%N)
    b1=$(cpu0_busy)
    a1=$(all_busy)
    o1=$(origins_ticks)
    c1=$(cpu_ticks "$pid")
    if ! kill -0 "$pid" 2>/dev/null || [ "$c1" -lt 0 ]; then
        NOTES+=("$px $row round $rnd: proxy died during the run (see $log)")
        return
    fi
    if [ "$tool" = httperf ]; then
        # per process: "Total: connections C requests R replies N test-duration D s",
        # "Reply status: 1xx=0 2xx=N ...", "Errors: total E ..."; no latency percentiles
        reqs=$(awk '/^Total: connections/ { n += $7 } END { print n + 0 }' "$log")
        rps=$(awk '/^Total: connections/ && $9 > 0 { r += $7 / $9 } END { printf "%.2f", r }' "$log")
        p99=
        non2xx=$(awk '/^Total: connections/ { n += $7 } /^Reply status:/ { sub("2xx=", "", $4); ok += $4 }
            END { if (n - ok > 0) print n - ok }' "$log")
        errs=$(awk '/^Errors: total/ && $3 > 0 { for (i = 4; i < NF; i += 2) if ($(i + 1) > 0) e[$i] += $(i + 1) }
            /^Errors: fd-unavail/ { for (i = 2; i < NF; i += 2) if ($(i + 1) > 0) e[$i] += $(i + 1) }
            END { for (k in e) printf " %s %d", k, e[k] }' "$log")
        [ -n "$errs" ] && errs="httperf errors:$errs"
    else
        reqs=$(awk '/ requests in / {print $1}' "$log")
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$log")
        p99=$(awk '$1 == "99%" {print $2}' "$log")
        non2xx=$(awk '/Non-2xx/ {print $NF}' "$log")
        errs=$(grep 'Socket errors' "$log")
        if [ "${CLOSE[$row]}" = 1 ] && [ -n "$errs" ]; then
            # wrk counts every server-side close as a read error; only the other kinds matter here
            errs=$(awk '/Socket errors/ { gsub(",", ""); if ($4 + $8 + $10 > 0) print }' "$log")
        fi
    fi
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { NOTES+=("$px $row round $rnd: no requests completed (see $log)"); return; }
    R_RPS[$key]=$rps
    R_P99[$key]=
    [ -n "$p99" ] && R_P99[$key]=$(to_ms "$p99")
    R_CPU[$key]=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
    R_BUSY[$key]=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", d / hz / (t1 - t0) * 100 }')
    # CPU used by anything but the proxy, the origin and the client, in % of one CPU
    other=$(awk -v a=$((a1 - a0 - (c1 - c0) - (o1 - o0))) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        '{ printf "%.0f", (a / hz - $1 - $2) / (t1 - t0) * 100 }' "$log.time")
    R_OTHER[$key]=$other
    echo "$key cpu_us_per_req=${R_CPU[$key]} rps=$rps p99_ms=${R_P99[$key]:--} cpu0_busy=${R_BUSY[$key]} other=$other" >>"$DIR/runs.txt"
    [ -n "$non2xx" ] && NOTES+=("$px $row round $rnd: $non2xx non-2xx/3xx responses")
    [ -n "$errs" ] && NOTES+=("$px $row round $rnd:$(echo "$errs" | sed 's/^ *//; s/Socket errors://')")
    if [ -n "${l0:-}" ]; then
        l1=$(tls_reuse_counts "$px")
        NOTES+=("$px $row round $rnd: logged $(awk -v a="$l0" -v b="$l1" 'BEGIN { split(a, x, " "); split(b, y, " ");
            printf "%d requests on full handshakes, %d on resumed sessions", y[1] - x[1], y[2] - x[2] }') (BENCH_TLS_LOG)")
    fi
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
echo "bench: ports $BASE-$((BASE + 27)), $ROUNDS rounds x ${SECS}s per run; proxies on CPU0, wrk+origin on CPU1" >&2
# warm-up pass (not recorded): caches, upstream pools, page faults
for px in "${PROXIES[@]}"; do
    [ "${AVAIL[$px]}" = 1 ] || continue
    port_var=PORT_OF_$px
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:${!port_var}/1k" >/dev/null 2>&1
done
if [ $WANT_TLS = 1 ]; then
    for px in gatehouse nginx haproxy; do
        [ "${AVAIL[$px-tls]}" = 1 ] || continue
        tls_probe "$px"
        for port in "${EC_PORT[$px]}" "${RSA_PORT[$px]}"; do
            taskset -c 1 wrk -t1 -c50 -d1s "https://127.0.0.1:$port/1k" >/dev/null 2>&1
        done
    done
fi
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
            inst=$px
            [ -n "${TLS[$row]:-}" ] && inst=$px-tls
            [ -n "${LB[$row]:-}" ] && inst=$px-lb
            [ "${AVAIL[$inst]:-0}" = 1 ] || continue
            [ "$px" = floor ] && [ "${CLOSE[$row]}" = 1 ] && continue
            [ -n "${CACHED[$row]:-}" ] && { [ "$px" = floor ] || [ "$px" = haproxy ]; } && continue
            [ -z "${CACHED[$row]:-}" ] && [ "$px" = varnish ] && continue
            echo "bench: round $rnd/$ROUNDS  ${LABEL[$row]}  $px" >&2
            wait_quiet
            run_wrk "$px" "$row" "$rnd"
        done
    done
done
fwd_bench
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
{ [ "${AVAIL[gatehouse]}" = 1 ] || [ "${AVAIL[gatehouse-fwd]:-0}" = 1 ]; } && gh_ver="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty)"
{
    echo "Gatehouse bench  $(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -r)  $(getconf _NPROCESSORS_ONLN) CPUs  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "median of $ROUNDS rounds x ${SECS}s; proxy alone on CPU0, wrk (1 thread) + origin on CPU1; one worker each; $NICED"
    echo "gatehouse $gh_ver | $(nginx -v 2>&1 | sed 's/.*: //') | HAProxy $(haproxy -v | awk 'NR==1 {print $3}') | floor = bench/relay.c | $(wrk -v 2>&1 | awk 'NR==1 {print $1, $2}')"
    [ $WANT_CACHE = 1 ] && echo "cache rows: warm /c/1k and /c/100k in Gatehouse's cache, nginx's proxy_cache$([ "${AVAIL[varnish]:-0}" = 1 ] && echo " and $(varnishd -V 2>&1 | awk 'NR==1 {print $2}' | tr -d '(') (malloc storage)")"
    echo "/ngx = proxy / nginx: req/s higher is better, p99 and CPU lower. CPU us/req = the proxy's utime+stime"
    echo "per request. CPU0 busy% < ~95 means the proxy was not the bottleneck (wrk+origin on CPU1 were)"
    if [ $WANT_TLS = 1 ]; then
        echo "tls rows: a second instance of each proxy terminating TLS (self-signed ECDSA P-256 / RSA 2048 made"
        echo "for this run); tls ka, tls resumed: wrk over https (resumed: Connection: close, wrk resumes each"
        echo "connection's TLS session); tls full: $TLS_CLIENTS x httperf $(dpkg-query -W -f='${Version}' httperf 2>/dev/null | sed 's/-.*//') --ssl-no-reuse"
        echo "(a full handshake and one request per connection, no p99). There CPU us/req = per handshake"
    fi
    echo
    F="%-15s %-10s %8s %6s %8s %6s %8s %6s %6s\n"
    if [ ${#ROWS[@]} -gt 0 ]; then
        printf "$F" "" "" "" "" "" "" "CPU" "" "CPU0"
        printf "$F" row proxy "req/s" "/ngx" "p99 ms" "/ngx" "us/req" "/ngx" "busy%"
        printf '%.0s-' $(seq 80); echo
    fi
    for row in "${ROWS[@]}"; do
        n_rps=$(med_of R_RPS "$row" nginx) n_p99=$(med_of R_P99 "$row" nginx)
        n_cpu=$(med_of R_CPU "$row" nginx)
        label=${LABEL[$row]}
        for px in "${PROXIES[@]}"; do
            inst=$px
            [ -n "${TLS[$row]:-}" ] && inst=$px-tls
            [ -n "${LB[$row]:-}" ] && inst=$px-lb
            if { [ "$px" = floor ] && { [ "${CLOSE[$row]}" = 1 ] || [ -n "${TLS[$row]:-}" ] || [ -n "${LB[$row]:-}" ]; }; } ||
                { [ -n "${CACHED[$row]:-}" ] && { [ "$px" = floor ] || [ "$px" = haproxy ]; }; } ||
                { [ -z "${CACHED[$row]:-}" ] && [ "$px" = varnish ]; }; then
                printf "$F" "$label" "$px" - - - - - - -
            elif [ "${AVAIL[$inst]:-0}" != 1 ]; then
                printf "%-15s %-10s %s\n" "$label" "$px" "$px: unavailable$([ "$inst" = "$px" ] || echo " (${inst#$px-} instance)")"
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
            if [ "$px" = floor ] || [ "$px" = varnish ]; then
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
    if [[ " ${ROWS[*]} " != *" ka1k50 "* ]]; then
        [ "${AVAIL[gatehouse]}" = 1 ] || [ $MAIN_WANTED = 0 ] || echo "gatehouse: unavailable: ${WHY[gatehouse]:-}"
    elif [ "${AVAIL[gatehouse]}" = 1 ]; then
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
        [ "${AVAIL[$px]}" = 1 ] || [ "$px" = gatehouse ] || [ $MAIN_WANTED = 0 ] || echo "$px: unavailable: ${WHY[$px]:-}"
    done
    if [ $WANT_LB = 1 ] && [[ " ${ROWS[*]} " == *" ka1k50 "* ]] && [ "${AVAIL[gatehouse-lb]:-0}" = 1 ]; then
        g4=$(med_of R_CPU lc4ka1k50 gatehouse) g1=$(med_of R_CPU ka1k50 gatehouse)
        echo "gatehouse CPU with 4 origins, least_conn / one origin (ka 1KiB 50c): $(ratio "$g4" "$g1" | sed 's/x$//')"
    fi
    if [ $WANT_TLS = 1 ]; then
        echo "tls as negotiated with openssl s_client (ECDSA listener; RSA listener; session resumption):"
        for px in gatehouse nginx haproxy; do
            if [ "${AVAIL[$px-tls]}" = 1 ]; then
                echo "  $px: ${TLS_INFO[$px]:-}"
            else
                echo "  $px: unavailable with TLS: ${WHY[$px-tls]:-}"
            fi
        done
    fi
    if [ $WANT_CACHE = 1 ]; then
        echo "hit ratio of Gatehouse's store (SIEVE) against LRU of the same capacity (bench/cache_hits.c):"
        taskset -c 1 "$OUT/cache_hits" | sed 's/^/  /'
    fi
    [ $MAIN_WANTED = 0 ] || [ ${#FWD_SEL[@]} -eq 0 ] || echo
    fwd_report
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

# The forward proxy's rows of `make bench` (the word `forward` in BENCH_ROWS). Sourced by
# bench/run.sh, whose helpers it uses (render, stop_pid, cpu_ticks, all_busy, run_wrk, med_of,
# wait_quiet, PIDS, NOTES, R_* ...); see bench/README.md, "Forward proxy rows".
#
#   fwd1k50    keep-alive `GET http://127.0.0.1:ORIGIN/1k` in absolute form through the forward
#              proxy, 50 connections (wrk with a Lua script): Gatehouse against Squid
#   tunnel1    one stream of 1 GB through a CONNECT tunnel (5 in a row per run), Gatehouse and Squid
#              against the direct loopback connection, and HAProxy relaying TCP (no CONNECT) as a
#              reference for a splicing relay on the same path
#   tunnel100  100 streams of 20 MB at once through CONNECT tunnels (3 batches in a row per run)
#
# Ports: BASE+24 Gatehouse's forward_proxy, BASE+25 Squid, BASE+26 the stream source (stream.c),
# BASE+23 HAProxy's TCP relay.

FWD_ROWS="fwd1k50 tunnel1 tunnel100"
FWD_SEL=() # the forward rows asked for, in order
declare -A T_STREAMS=([tunnel1]=1 [tunnel100]=100)
declare -A T_BYTES=([tunnel1]=1000000000 [tunnel100]=20000000)
declare -A T_REPEAT=([tunnel1]=5 [tunnel100]=3)
declare -A T_GBPS T_CPU T_BUSY0 T_BUSY1 # row|path|round -> GB/s, proxy CPU ms/GB, CPU0 and CPU1 busy%
declare -A INST INST_PORT SCRIPT        # rows served by another instance of each proxy (run_wrk)

fwd_cpu_busy() { # cpu number -> its non-idle time in ticks (user nice system irq softirq)
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# the proxy at 127.0.0.1:PORT relays an absolute-form GET to the origin and a CONNECT to the source
# (HAProxy: relays a connection to the source)
fwd_ready() { # proxy port pid
    local i
    for i in $(seq 200); do
        kill -0 "$3" 2>/dev/null || return 1
        if [ "$1" = haproxy ]; then
            taskset -c 1 "$OUT/stream" fetch "$2" 1 1000 1 >/dev/null 2>&1 && return
        elif [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' -x "http://127.0.0.1:$2" \
            "http://127.0.0.1:$ORIGIN_PORT/1k")" = 200 ]; then
            taskset -c 1 "$OUT/stream" fetch "$2" 1 1000 1 "127.0.0.1:$FWD_STREAM_PORT" >/dev/null 2>&1
            return
        fi
        sleep 0.05
    done
    return 1
}

fwd_start() { # proxy (gatehouse, squid, haproxy) -> AVAIL, SPID_OF, MPID_OF of "PROXY-fwd", or WHY
    local px=$1 inst=$1-fwd port=${INST_PORT[$1-fwd]} cfg pid sq=$DIR/squid-${INST_PORT[$1-fwd]}
    local log=$DIR/$inst-$port.out
    AVAIL[$inst]=0
    case $px in
    gatehouse)
        [ -x "$GH_BIN" ] || { WHY[$inst]="not built ($GH_BIN)"; return; }
        cfg=$(render "$ROOT/bench/gatehouse-forward.conf.in" "$port")
        sed -i "s|@STREAM_PORT@|$FWD_STREAM_PORT|g" "$cfg"
        taskset -c 0 "$GH_BIN" -c "$cfg" >"$log" 2>&1 &
        ;;
    squid)
        command -v squid >/dev/null || { WHY[$inst]="squid not found (scripts/deps.sh bench)"; return; }
        mkdir -p "$sq"
        [ "$(id -u)" = 0 ] && chown proxy: "$sq" 2>/dev/null # Squid drops root for user proxy
        cfg=$(render "$ROOT/bench/squid.conf.in" "$port")
        sed -i "s|@SQUID_DIR@|$sq|g" "$cfg"
        taskset -c 0 squid -N -f "$cfg" >"$log" 2>&1 &
        ;;
    haproxy)
        cfg=$(render "$ROOT/bench/haproxy-tunnel.cfg.in" "$port")
        sed -i "s|@STREAM_PORT@|$FWD_STREAM_PORT|g" "$cfg"
        taskset -c 0 haproxy -db -f "$cfg" >"$log" 2>&1 &
        ;;
    esac
    pid=$!
    PIDS+=("$pid")
    if ! fwd_ready "$px" "$port" "$pid"; then
        WHY[$inst]=$(tail -c 300 "$log" 2>/dev/null | tr '\n' ' ')
        [ "$px" = squid ] && WHY[$inst]+=$(tail -c 300 "$sq/cache.log" 2>/dev/null | tr '\n' ' ')
        stop_pid "$pid"
        return
    fi
    AVAIL[$inst]=1 SPID_OF[$inst]=$pid MPID_OF[$inst]=$pid
}

fwd_setup() {
    INST_PORT[gatehouse-fwd]=$((BASE + 24)) INST_PORT[squid-fwd]=$((BASE + 25)) INST_PORT[haproxy-fwd]=$((BASE + 23))
    FWD_STREAM_PORT=$((BASE + 26))
    LABEL[fwd1k50]="fwd 1KiB 50c" CONNS[fwd1k50]=50 URLPATH[fwd1k50]=/1k CLOSE[fwd1k50]=0
    INST[fwd1k50]=fwd SCRIPT[fwd1k50]=$DIR/forward.lua
    LABEL[tunnel1]="tunnel 1x1GB" LABEL[tunnel100]="tunnel 100x20MB"
    # wrk sends its request line as the script sets it: the absolute form a client sends a proxy
    printf 'wrk.path = "http://127.0.0.1:%s/1k"\nwrk.headers["Host"] = "127.0.0.1:%s"\n' \
        "$ORIGIN_PORT" "$ORIGIN_PORT" >"$DIR/forward.lua"
    cc $CFLAGS -o "$OUT/stream" "$ROOT/bench/stream.c" || die "cannot build bench/stream.c"
    taskset -c 1 "$OUT/stream" serve "$FWD_STREAM_PORT" >"$DIR/stream.out" 2>&1 &
    FWD_STREAM_PID=$!
    PIDS+=("$FWD_STREAM_PID")
    local px
    for px in gatehouse squid $([[ " ${FWD_SEL[*]} " == *" tunnel"* ]] && echo haproxy); do
        fwd_start "$px"
        [ "${AVAIL[$px-fwd]}" = 1 ] || echo "bench: $px as a forward proxy unavailable: ${WHY[$px-fwd]}" >&2
    done
}

# one tunnel run: stream.c's reader on CPU1 fetches the row's streams from the source (CPU1),
# directly, through PROXY's CONNECT (CPU0), or through HAProxy's TCP relay (CPU0)
fwd_run_tunnel() { # path(direct|gatehouse|squid|haproxy) row round
    local px=$1 row=$2 rnd=$3 key="$2|$1|$3" port=$FWD_STREAM_PORT target=() pid=
    local log=$DIR/stream.$1.$2.$3.txt c0=0 c1=0 s0 s1 a0 a1 b0 b1 u0 u1 t0 t1 bytes secs other
    if [ "$px" != direct ]; then
        port=${INST_PORT[$px-fwd]} pid=${MPID_OF[$px-fwd]}
        [ "$px" = haproxy ] || target=("127.0.0.1:$FWD_STREAM_PORT")
        kill -0 "$pid" 2>/dev/null || { NOTES+=("$px $row round $rnd: proxy is not running"); return; }
        c0=$(cpu_ticks "$pid")
    fi
    s0=$(cpu_ticks "$FWD_STREAM_PID") a0=$(all_busy) b0=$(fwd_cpu_busy 0) u0=$(fwd_cpu_busy 1)
    t0=$(date +%s.%N)
    { time taskset -c 1 "$OUT/stream" fetch "$port" "${T_STREAMS[$row]}" "${T_BYTES[$row]}" \
        "${T_REPEAT[$row]}" "${target[@]}" >"$log" 2>&1; } 2>"$log.time"
    local rc=$?
    t1=$(date +%s.%N)
    u1=$(fwd_cpu_busy 1) b1=$(fwd_cpu_busy 0) a1=$(all_busy) s1=$(cpu_ticks "$FWD_STREAM_PID")
    [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
    if [ $rc != 0 ]; then
        NOTES+=("$px $row round $rnd: the streams failed: $(head -c 300 "$log" | tr '\n' ' ')")
        return
    fi
    bytes=$(awk '$1 == "bytes" { print $2 }' "$log") secs=$(awk '$1 == "bytes" { print $4 }' "$log")
    T_GBPS[$key]=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b / s / 1e9 }')
    [ -n "$pid" ] && T_CPU[$key]=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v b="$bytes" \
        'BEGIN { printf "%.1f", d / hz * 1000 / (b / 1e9) }')
    T_BUSY0[$key]=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", d / hz / (t1 - t0) * 100 }')
    T_BUSY1[$key]=$(awk -v d=$((u1 - u0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", d / hz / (t1 - t0) * 100 }')
    other=$(awk -v a=$((a1 - a0 - (c1 - c0) - (s1 - s0))) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        '{ printf "%.0f", (a / hz - $1 - $2) / (t1 - t0) * 100 }' "$log.time")
    R_OTHER[$key]=$other
    echo "$key gbps=${T_GBPS[$key]} proxy_cpu_ms_per_gb=${T_CPU[$key]:--} cpu0_busy=${T_BUSY0[$key]} cpu1_busy=${T_BUSY1[$key]} other=$other" >>"$DIR/runs.txt"
}

fwd_bench() { # all rounds of the forward rows
    [ ${#FWD_SEL[@]} -gt 0 ] || return 0
    fwd_setup
    local rnd row px paths order n
    for px in gatehouse squid haproxy; do # warm-up (not recorded)
        [ "${AVAIL[$px-fwd]:-0}" = 1 ] || continue
        [ "$px" = haproxy ] ||
            taskset -c 1 wrk -t1 -c50 -d1s -s "$DIR/forward.lua" "http://127.0.0.1:${INST_PORT[$px-fwd]}" >/dev/null 2>&1
        taskset -c 1 "$OUT/stream" fetch "${INST_PORT[$px-fwd]}" 10 10000000 1 \
            $([ "$px" = haproxy ] || echo "127.0.0.1:$FWD_STREAM_PORT") >/dev/null 2>&1
    done
    for rnd in $(seq "$ROUNDS"); do
        for row in "${FWD_SEL[@]}"; do
            paths=(gatehouse squid)
            [ "$row" = fwd1k50 ] || paths=(direct gatehouse squid haproxy)
            n=$(((rnd - 1) % ${#paths[@]})) # the order rotates every round, as in the other rows
            order=("${paths[@]:$n}" "${paths[@]:0:$n}")
            for px in "${order[@]}"; do
                [ "$px" = direct ] || [ "${AVAIL[$px-fwd]:-0}" = 1 ] || continue
                echo "bench: round $rnd/$ROUNDS  ${LABEL[$row]}  $px" >&2
                wait_quiet
                if [ "$row" = fwd1k50 ]; then run_wrk "$px" "$row" "$rnd"; else fwd_run_tunnel "$px" "$row" "$rnd"; fi
            done
        done
    done
}

fwd_report() {
    [ ${#FWD_SEL[@]} -gt 0 ] || return 0
    local row px label F s_rps s_p99 s_cpu d g rps p99 cpu busy
    echo "forward proxy: Gatehouse's forward_proxy and $(squid -v 2>/dev/null | awk 'NR == 1 { print "Squid", $4 }')" \
        "(squid -N: one process, cache deny all, no logs), each alone on CPU0"
    if [[ " ${FWD_SEL[*]} " == *" fwd1k50 "* ]]; then
        echo "fwd 1KiB 50c: wrk (Lua script) sends GET http://127.0.0.1:ORIGIN/1k in absolute form; /sq = proxy / squid"
        F="%-15s %-10s %8s %6s %8s %6s %8s %6s %6s\n"
        printf "$F" "" "" "" "" "" "" "CPU" "" "CPU0"
        printf "$F" row proxy "req/s" "/sq" "p99 ms" "/sq" "us/req" "/sq" "busy%"
        printf '%.0s-' $(seq 80); echo
        s_rps=$(med_of R_RPS fwd1k50 squid) s_p99=$(med_of R_P99 fwd1k50 squid) s_cpu=$(med_of R_CPU fwd1k50 squid)
        label=${LABEL[fwd1k50]}
        for px in gatehouse squid; do
            if [ "${AVAIL[$px-fwd]}" != 1 ]; then
                printf "%-15s %-10s %s\n" "$label" "$px" "unavailable: ${WHY[$px-fwd]}"
            else
                rps=$(med_of R_RPS fwd1k50 "$px") p99=$(med_of R_P99 fwd1k50 "$px")
                cpu=$(med_of R_CPU fwd1k50 "$px") busy=$(med_of R_BUSY fwd1k50 "$px")
                printf "$F" "$label" "$px" "$(fmt "$rps" %.0f)" "$(ratio "$rps" "$s_rps")" "$(fmt "$p99" %.2f)" \
                    "$(ratio "$p99" "$s_p99")" "$(fmt "$cpu" %.2f)" "$(ratio "$cpu" "$s_cpu")" "$(fmt "$busy" %.0f)"
            fi
            label=""
        done
        g=$(med_of R_CPU fwd1k50 gatehouse)
        echo "gatehouse / squid CPU per request (fwd 1KiB 50c): $(ratio "$g" "$s_cpu" | sed 's/x$//')  (target <= 0.50)"
        echo
    fi
    fwd_report_tunnels
}

fwd_report_tunnels() {
    local row px label F d gb cpu rat out=""
    [[ " ${FWD_SEL[*]} " == *" tunnel"* ]] || return 0
    echo "tunnels: bench/stream.c's source and reader both on CPU1, the proxy on CPU0; GB = 10^9 bytes;"
    echo "proxy CPU = the proxy's utime+stime per GB moved; CPU1 busy% near 100: the clients were the limit;"
    echo "haproxy* = HAProxy $(haproxy -v | awk 'NR==1 {print $3}') relaying TCP (no CONNECT), splice-request/response: a splicing relay for reference"
    F="%-16s %-10s %7s %8s %13s %6s %6s\n"
    printf "$F" "" "" "" "" "proxy CPU" "CPU0" "CPU1"
    printf "$F" row path "GB/s" "/direct" "ms/GB" "busy%" "busy%"
    printf '%.0s-' $(seq 72); echo
    for row in "${FWD_SEL[@]}"; do
        [ "$row" = fwd1k50 ] && continue
        d=$(med_of T_GBPS "$row" direct) label=${LABEL[$row]}
        for px in direct gatehouse squid haproxy; do
            if [ "$px" != direct ] && [ "${AVAIL[$px-fwd]:-0}" != 1 ]; then
                printf "%-16s %-10s %s\n" "$label" "$px" "unavailable: ${WHY[$px-fwd]}"
            else
                gb=$(med_of T_GBPS "$row" "$px") cpu=$(med_of T_CPU "$row" "$px")
                printf "$F" "$label" "$px$([ "$px" = haproxy ] && echo '*')" "$(fmt "$gb" %.2f)" "$(ratio "$gb" "$d")" "$(fmt "$cpu" %.0f)" \
                    "$(fmt "$(med_of T_BUSY0 "$row" "$px")" %.0f)" "$(fmt "$(med_of T_BUSY1 "$row" "$px")" %.0f)"
            fi
            label=""
        done
        rat=$(ratio "$(med_of T_GBPS "$row" gatehouse)" "$d" | sed 's/x$//')
        out+=" ${LABEL[$row]#tunnel } $rat;"
    done
    echo "gatehouse tunnel / direct throughput:${out%;}  (target >= 0.85)"
    echo
}

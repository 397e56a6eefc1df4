# shellcheck shell=bash
# shellcheck disable=SC2034  # H2_* are read by run.sh's report
# bench/h2.sh -- scenario (h) of bench/run.sh: a page load over the HTTPS
# proxy port (issue 13). Sourced by run.sh (it uses run.sh's helpers:
# run_wrk, measure_rss, stop_instance, worker_ticks, wait_port, the
# RATE/P99/ERRS maps); defines h2_make_page, run_h2page and fills
# H2_LINES / H2_FAILED.
#
# The page: BENCH_H2_OBJECTS (100) small no-store objects on the nginx
# origin, /page/0 .. /page/99, 0.5 to 8 KiB each. The client keeps the whole
# page in flight over TLS to the proxy's TLS port, requesting each object in
# turn, again and again for BENCH_DURATION:
#   h2  HTTP/2, ONE TLS connection, 100 concurrent streams (h2load -c1 -m100
#       -t1 -D; :scheme http, :authority = the origin, :path /page/N, the
#       TCP/TLS connection to the proxy): what a browser does with an h2
#       proxy
#   h1  HTTP/1.1, 6 keep-alive TLS connections, one request at a time on
#       each (wrk -t1 -c6 with page.lua, absolute-form targets): what a
#       browser does when the proxy does not speak h2 (6 connections per
#       proxy, no pipelining)
# against, in one run, back to back:
#   hopcache       its [tls] port (and hopcache-base's, with HOPCACHE_BASELINE)
#   nghttpx        Debian's nghttp2-proxy in its forward-proxy mode
#                  (--http2-proxy), TLS on its frontend (the same throwaway
#                  ECDSA P-256 certificate), one worker (-n1), backend = the
#                  nginx origin (in this mode nghttpx passes each request on
#                  in absolute-form to a fixed next hop, which is meant to be
#                  a forward proxy; nginx accepts absolute-form, so it is the
#                  origin itself here)
#   hopcache-again the first hopcache's h2 run once more at the end: how much
#                  the machine drifted during the runs
# Before timing, each proxy gets two pages over h2 (h2load -n 200): every
# response must be a 200 with the page's bytes, ALPN must say h2, and (with
# BENCH_ACCESS_LOG=1) its access log must show the 200 absolute URLs of the
# origin, forwarded to the origin (hopcache: UPSTREAM = the origin, OUTCOME
# OK; nghttpx: "GET http://ORIGIN/page/N HTTP/2" and its backend = the
# origin); hopcache's h2 stream counter must have grown by 200. After each
# timed run the same log check covers the run (lines >= requests completed,
# protocol as intended). A failed check: the row says so, run.sh exits
# non-zero.

H2_OBJECTS=${BENCH_H2_OBJECTS:-100}
H2_STREAMS=${BENCH_H2_STREAMS:-$H2_OBJECTS}   # h2: concurrent streams on the one connection
H2_H1CONNS=${BENCH_H2_H1CONNS:-6}             # h1: parallel keep-alive TLS connections

declare -a H2_LINES=()
H2_FAILED=""
H2_FAILS=0
declare -A H2_WARN=() H2_CPU=() H2_CLIENT=() H2_LOGCHECK=() H2_PAGE_MS=() H2_TLSINFO=()
H2_PAGE_BYTES=0

h2_fail() {  # h2_fail MESSAGE...
    H2_FAILED=$*
    H2_FAILS=$((H2_FAILS + 1))
    log "error: (h) $*"
    H2_LINES+=("FAIL: $*")
}

# The page's objects, under the origin's root (no-store, like /1k): object
# N is 512 + ((N * 37) mod 16) * 512 bytes, 0.5 to 8 KiB.
h2_make_page() {
    local i sz
    mkdir -p "$WORK/www/page"
    H2_PAGE_BYTES=0
    for ((i = 0; i < H2_OBJECTS; i++)); do
        sz=$((512 + (i * 37 % 16) * 512))
        # (into the file, then cut: a "| head -c" would SIGPIPE base64)
        head -c "$sz" /dev/urandom | base64 -w0 > "$WORK/www/page/$i"
        truncate -s "$sz" "$WORK/www/page/$i"
        H2_PAGE_BYTES=$((H2_PAGE_BYTES + sz))
    done
    chmod 0755 "$WORK/www/page"
    chmod 0644 "$WORK/www/page"/*
}

# nghttpx, forward-proxy mode, TLS frontend on PORT, one worker; its own
# (empty) config file, not /etc/nghttpx/nghttpx.conf.
h2_start_nghttpx() {  # h2_start_nghttpx PORT
    local port=$1 dir="$WORK/nghttpx"
    mkdir -p "$dir"
    : > "$dir/nghttpx.conf"
    local -a logopt=()
    if [[ $ACCESS_LOG == 1 ]]; then
        # combined (nghttpx's default) + ALPN and the backend it used
        # shellcheck disable=SC2016  # nghttpx's variables, not the shell's
        logopt=(--accesslog-file="$dir/access.log"
                --accesslog-format='$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $alpn $backend_host:$backend_port')
    fi
    nghttpx --conf="$dir/nghttpx.conf" --http2-proxy --workers=1 \
        --frontend="127.0.0.1,$port" --backend="127.0.0.1,$ORIGIN_PORT" \
        --no-ocsp --errorlog-file="$dir/error.log" --pid-file="$dir/nghttpx.pid" "${logopt[@]}" \
        "$WORK/hopcache-tls/key.pem" "$WORK/hopcache-tls/cert.pem" >"$dir/stdout.log" 2>&1 &
    PID_OF["nghttpx"]=$!
    STARTED+=("${PID_OF["nghttpx"]}")
    PORT_OF["nghttpx"]=$port
    if ! wait_port "$port" "${PID_OF["nghttpx"]}" nghttpx; then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        h2_fail "nghttpx did not start (see $dir/error.log)"
        return 1
    fi
    log "(h) nghttpx up (pid ${PID_OF["nghttpx"]}, TLS frontend 127.0.0.1:$port, backend the origin)"
}

h2_log_of() {  # h2_log_of SERVER -> its access log path
    case $1 in
        nghttpx) echo "$WORK/nghttpx/access.log" ;;
        *-again) echo "$WORK/${1%-again}/access.log" ;;
        *) echo "$WORK/$1/access.log" ;;
    esac
}
h2_log_size() { stat -c %s "$(h2_log_of "$1")" 2>/dev/null || echo 0; }

# Lines of SERVER's access log after byte OFFSET: "TOTAL GOOD PROTO_OK";
# GOOD = a 200 for an absolute URL of the page, forwarded to the origin;
# PROTO_OK = those logged with protocol PROTO (nghttpx only: HTTP/2 or
# HTTP/1.1; hopcache's native format has no version: = GOOD).
h2_log_count() {  # h2_log_count SERVER OFFSET PROTO
    local s=$1 off=$2 proto=$3 f o=127\\.0\\.0\\.1:$ORIGIN_PORT
    f=$(h2_log_of "$s")
    [[ -f $f ]] || { echo "0 0 0"; return; }
    if [[ $s == nghttpx ]]; then
        tail -c +"$((off + 1))" "$f" | awk -v o="$o" -v p="$proto" '
            { n++ }
            $0 ~ ("\"GET http://" o "/page/[0-9]+ HTTP/[0-9.]+\" 200 ") && $NF ~ ("^" o "$") {
                g++; if (index($0, " " p "\" 200 ")) k++ }
            END { printf "%d %d %d\n", n, g, k }'
    else
        tail -c +"$((off + 1))" "$f" | awk -v o="$o" '
            { n++ }
            $4 == "GET" && $5 ~ ("^http://" o "/page/[0-9]+$") && $6 == "200" && $10 ~ ("^" o "$") && $11 == "OK" { g++ }
            END { printf "%d %d %d\n", n, g, g }'
    fi
}

# A hopcache's metric (sum over matching lines), as in identity.sh.
h2_metric() {  # h2_metric PLAINPORT REGEX
    curl -sS --max-time 5 --noproxy '*' "http://127.0.0.1:$1/hopcache/metrics" 2>/dev/null \
        | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $2; n++ } END { if (n) printf "%d", s; else print "n/a" }'
}

h2_uris() {  # h2_uris TLSPORT FILE -- the page as h2load URIs (only the first one's host:port is used)
    local i
    for ((i = 0; i < H2_OBJECTS; i++)); do echo "https://127.0.0.1:$1/page/$i"; done > "$2"
}

# h2load against a proxy's TLS port: the origin's :authority, :scheme http.
# Extra h2load arguments (-n N, or -D SECONDS) after the port.
h2_h2load() {  # h2_h2load TLSPORT OUTFILE CPUFILE LOGFILE H2LOAD-ARGS...
    local port=$1 out=$2 cpu=$3 lf=$4 uris="$WORK/results/h2-uris-$1"
    shift 4
    h2_uris "$port" "$uris"
    local -a timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S %e' -o "$cpu")
    rm -f "$cpu"
    "${timer[@]}" timeout -k 5 $((DUR_S + 60)) \
        h2load -t1 -c1 -m"$H2_STREAMS" -i "$uris" \
            -H ":authority: 127.0.0.1:$ORIGIN_PORT" -H ":scheme: http" \
            -H "user-agent: hopcache-bench/h2load-page" \
            --log-file="$lf" "$@" >"$out" 2>&1 &
    LOAD_PIDS=($!)
    local rc=0
    wait "${LOAD_PIDS[0]}" || rc=$?
    LOAD_PIDS=()
    return $rc
}

# Parse h2load's summary: "DONE SUCCEEDED ERRORS NON2XX DATABYTES RPS PROTO"
h2_parse() {  # h2_parse OUTFILE
    awk '
        /^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^req\/s/) { r = $i; sub(/,$/, "", r) } }
        /^requests:/ { done = $6; ok = $8; bad = $10 + $12 + $14 }
        /^status codes:/ { n2 = $5 + $7 + $9 }
        /^traffic:/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "data") { d = $i; gsub(/[()]/, "", d) } }
        /^Application protocol:/ { p = $3 }
        END { printf "%d %d %d %d %d %s %s\n", done, ok, bad, n2, d, (r == "" ? 0 : r), (p == "" ? "none" : p) }' "$1"
}

# p50 and p99 of h2load's per-request log (3rd column: microseconds until
# the end of the response): "P50_US P99_US N"
h2_pct() {  # h2_pct LOGFILE
    cut -f3 "$1" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "0 0 0"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99 + 0.999999); if (i99 > NR) i99 = NR
        printf "%d %d %d\n", a[i50], a[i99], NR }'
}

h2_cpu_client() {  # h2_cpu_client CPUFILE -> "NN% of a core" (user + sys / wall)
    local f=$1
    if [[ ! -s $f ]]; then echo "n/a"; return; fi
    awk 'END { if ($3 > 0) printf "%.0f%% of a core (user %.2f s + sys %.2f s in %.2f s)", ($1 + $2) / $3 * 100, $1, $2, $3; else print "n/a" }' "$f"
}

h2_ticks() {  # h2_ticks SERVER -> CPU ticks of its workers (nghttpx: also its master, which is idle)
    local s=$1 k t=0 v
    for k in ${PID_OF[$s]} $(descendants "${PID_OF[$s]}"); do
        v=$(awk '{ print $14 + $15 }' "/proc/$k/stat" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# Check: two pages over h2 through TLSPORT; every response a 200 with the
# page's bytes, ALPN h2, the access log (if on) shows them forwarded to the
# origin, hopcache's stream counter grew by as many.
h2_check() {  # h2_check SERVER TLSPORT -> 0 if fine
    local s=$1 port=$2 n=$((2 * H2_OBJECTS)) off before after out parsed
    local ndone ok bad n2 data rps proto want_bytes=$((2 * H2_PAGE_BYTES)) why=""
    off=$(h2_log_size "$s")
    [[ $s != nghttpx ]] && before=$(h2_metric "${PORT_OF[$s]}" '^hopcache_h2_streams_total')
    out="$WORK/results/h2check-$s.txt"
    h2_h2load "$port" "$out" "$out.cpu" "$out.log" -n "$n" || why+="h2load failed (exit $?): $(tail -n 2 "$out" | tr '\n' ' '); "
    parsed=$(h2_parse "$out")
    read -r ndone ok bad n2 data rps proto <<<"$parsed"
    [[ $proto == h2 ]] || why+="ALPN: '$proto', want h2; "
    ((ok == n && bad == 0 && n2 == 0)) || why+="$ok of $n succeeded ($bad failed, $n2 not 2xx); "
    ((data == want_bytes)) || why+="$data body bytes, want $want_bytes; "
    H2_TLSINFO[$s]=$(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' "$out" | tr '\n' ' ' | sed 's/ *$//')
    local logc=""
    if [[ $ACCESS_LOG == 1 ]]; then
        sleep 0.3
        local tot good pr
        read -r tot good pr <<<"$(h2_log_count "$s" "$off" HTTP/2)"
        if ((good != n || pr != n)); then
            why+="access log: $tot new lines, $good of them a 200 for http://127.0.0.1:$ORIGIN_PORT/page/N forwarded to the origin, $pr over HTTP/2 (want $n); "
        else
            logc="access log: $n lines, GET http://127.0.0.1:$ORIGIN_PORT/page/N 200, forwarded to 127.0.0.1:$ORIGIN_PORT$([[ $s == nghttpx ]] && echo ", logged as HTTP/2 (ALPN h2)" || echo " (UPSTREAM), OUTCOME OK")"
        fi
    else
        logc="access log off (BENCH_ACCESS_LOG=0): not checked"
    fi
    if [[ $s != nghttpx ]]; then
        sleep 1.2   # workers publish their counters about once a second
        after=$(h2_metric "${PORT_OF[$s]}" '^hopcache_h2_streams_total')
        if [[ $before == n/a || $after == n/a ]]; then
            why+="no hopcache_h2_streams_total in /hopcache/metrics; "
        elif ((after - before < n)); then
            why+="hopcache_h2_streams_total grew by $((after - before)), want >= $n; "
        else
            logc+="; hopcache_h2_streams_total +$((after - before))"
        fi
    fi
    if [[ -n $why ]]; then
        h2_fail "$s: check before timing (h2load -n $n through 127.0.0.1:$port): ${why%; }"
        return 1
    fi
    H2_LINES+=("$s checked before timing: h2load -n $n (two pages, one connection) -> $n x 200, $data body bytes (= 2 pages), ALPN h2 ($([[ -n ${H2_TLSINFO[$s]} ]] && echo "${H2_TLSINFO[$s]}")); $logc")
    return 0
}

# One timed run. KIND h2 (h2load) or h1 (wrk + page.lua); key "KIND:SERVER".
h2_timed() {  # h2_timed KIND SERVER TLSPORT
    local kind=$1 s=$2 port=$3 key="$1:$2" off t0 t1 m0="" m1=""
    local hop=${s%-again}
    off=$(h2_log_size "$s")
    [[ $hop != nghttpx ]] && m0=$(h2_metric "${PORT_OF[$hop]}" '^hopcache_h2_streams_total')
    t0=$(h2_ticks "$hop")
    # Mid-run: how many connections to the origin are open (the proxy's
    # upstream side; nothing else talks to the origin during (h)).
    local conns_f="$WORK/results/h-$kind-$s.origin-conns"
    rm -f "$conns_f"
    ( sleep "$(awk -v d="$DUR_S" 'BEGIN { print d / 2 }')"
      ss -Htn state established "( dport = :$ORIGIN_PORT )" 2>/dev/null | wc -l > "$conns_f" ) &
    local sampler=$!
    if [[ $kind == h2 ]]; then
        local out="$WORK/results/h2-$s.txt" parsed ndone ok bad n2 data rps proto p50 p99 nl
        log "(h) $s: h2load -t1 -c1 -m$H2_STREAMS -D $DUR_S https://127.0.0.1:$port/ (:authority 127.0.0.1:$ORIGIN_PORT, :scheme http, /page/0..$((H2_OBJECTS - 1)))"
        local rc=0
        h2_h2load "$port" "$out" "$out.cpu" "$out.log" -D "$DUR_S" || rc=$?
        t1=$(h2_ticks "$hop")
        parsed=$(h2_parse "$out")
        read -r ndone ok bad n2 data rps proto <<<"$parsed"
        read -r p50 p99 nl <<<"$(h2_pct "$out.log")"
        RATE[$key]=$rps
        P99[$key]=$(awk -v u="$p99" 'BEGIN { printf "%.2f ms", u / 1000 }')
        P50_H2[$key]=$(awk -v u="$p50" 'BEGIN { printf "%.2f ms", u / 1000 }')
        REQS[$key]=$ok
        ERRS[$key]=$((bad + n2))
        ERRDETAIL[$key]=""
        ((bad)) && ERRDETAIL[$key]+="failed/errored/timeout $bad "
        ((n2)) && ERRDETAIL[$key]+="non-2xx $n2 "
        if ((rc != 0)) || [[ $proto != h2 ]]; then
            ERRS[$key]=$((ERRS[$key] + 1))
            ERRDETAIL[$key]+="h2load exit $rc, ALPN '$proto' "
        fi
        ERRDETAIL[$key]=${ERRDETAIL[$key]% }
        H2_CLIENT[$key]=$(h2_cpu_client "$out.cpu")
    else
        log "(h) $s: wrk -t1 -c$H2_H1CONNS https://127.0.0.1:$port/ with page.lua (absolute-form, /page/0..$((H2_OBJECTS - 1)))"
        PATH_OF[h1]=/page/
        local cpu="$WORK/results/h1-$s.cpu" u0 u1
        # wrk's CPU: the children times of this shell around run_wrk
        h2_children_cpu
        u0=$H2_CCPU
        CONNS=$H2_H1CONNS WRK_SCRIPT="$BENCH_DIR/page.lua" BENCH_ID_MODE=page \
            BENCH_PAGE_PREFIX="http://127.0.0.1:$ORIGIN_PORT/page/" BENCH_PAGE_COUNT=$H2_OBJECTS \
            run_wrk h1 "$s" "https://127.0.0.1:$port/"
        h2_children_cpu
        u1=$H2_CCPU
        t1=$(h2_ticks "$hop")
        P50_H2[$key]=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' "$WORK/results/h1-$s.txt" | tail -n 1 | awk '{ printf "%.2f ms", $1 / 1000 }')
        H2_CLIENT[$key]=$(awk -v a="$u0" -v b="$u1" -v d="$DUR_S" 'BEGIN { printf "%.0f%% of a core (user + sys %.2f s in %d s)", (b - a) / d * 100, b - a, d }')
    fi
    wait "$sampler" 2>/dev/null || true
    H2_ORIGIN_CONNS[$key]=$(cat "$conns_f" 2>/dev/null || echo "n/a")
    RAN[$key]=1
    H2_CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${REQS[$key]:-0}" \
        'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "n/a" }')
    H2_PAGE_MS[$key]=$(awk -v r="${RATE[$key]:-0}" -v n="$H2_OBJECTS" 'BEGIN { if (r > 0) printf "%.2f", n / r * 1000; else print "n/a" }')
    measure_rss "$hop"
    RSSROW[$key]=${RSS_OF[$hop]}
    if [[ ${ERRS[$key]} != 0 ]]; then
        h2_fail "($kind) $s: ${ERRS[$key]} errors during the timed run (${ERRDETAIL[$key]})"
    fi
    # The run in the proxy's own records.
    sleep 1.2
    local proto=HTTP/2 lc=""
    [[ $kind == h1 ]] && proto=HTTP/1.1
    if [[ $ACCESS_LOG == 1 ]]; then
        local tot good pr n=${REQS[$key]:-0}
        read -r tot good pr <<<"$(h2_log_count "$s" "$off" "$proto")"
        lc="access log: $tot lines during the run, $good a 200 for a page object forwarded to the origin"
        [[ $s == nghttpx ]] && lc+=", $pr of them $proto"
        lc+=" (client completed $n)"
        if ((good < n || pr < n)); then
            H2_WARN[$key]="WARNING: access log has fewer forwarded page requests than the client completed"
            h2_fail "($kind) $s: $lc"
        fi
    else
        lc="access log off"
    fi
    if [[ $hop != nghttpx ]]; then
        m1=$(h2_metric "${PORT_OF[$hop]}" '^hopcache_h2_streams_total')
        if [[ $m0 != n/a && $m1 != n/a ]]; then
            lc+="; hopcache_h2_streams_total +$((m1 - m0))"
            if [[ $kind == h1 ]] && ((m1 != m0)); then h2_fail "(h1) $s: h2 streams were opened during the HTTP/1.1 run"; fi
            if [[ $kind == h2 ]] && ((m1 - m0 < ${REQS[$key]:-0})); then h2_fail "(h2) $s: fewer h2 streams than requests"; fi
        fi
    fi
    H2_LOGCHECK[$key]=$lc
    log "(h) $s $kind: $(printf '%.0f' "${RATE[$key]:-0}") req/s, p99 ${P99[$key]}, $lc"
    sleep 1
}
declare -A P50_H2=() H2_ORIGIN_CONNS=()

h2_children_cpu() {  # H2_CCPU = user + sys seconds of this shell's waited-for children so far
    # `times` must run in this shell (a subshell has its own children
    # times), so through a file rather than $(...).
    local a b f="$WORK/results/times.txt"
    times > "$f"
    { read -r _ _; read -r a b; } < "$f"
    H2_CCPU=$(awk -v a="$a" -v b="$b" 'function s(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); return m * 60 + t }
        BEGIN { printf "%.3f", s(a) + s(b) }')
}
H2_CCPU=0

h2_ratio() {  # h2_ratio KEY KEY_BASE -> rate / base rate
    local v=${RATE[$1]:-} o=${RATE[$2]:-}
    if [[ -z $v || -z $o ]]; then echo "n/a"; return; fi
    awk -v v="$v" -v o="$o" 'BEGIN { if (o > 0) printf "%.2f", v / o; else print "n/a" }'
}

run_h2page() {
    local h s ok
    for tool in h2load nghttpx; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            h2_fail "'$tool' not found (Debian: apt-get install nghttp2-client nghttp2-proxy)"
            return 0
        fi
    done
    local -a hops=()
    for h in "${HOPS[@]}"; do
        if [[ " ${ACTIVE[*]} " != *" $h "* ]]; then
            H2_LINES+=("$(line_tag "$h")skipped: $h is not running (${NOTE_OF[$h]:-not in BENCH_SERVERS})")
        elif [[ ${HAS_TLS_OF[$h]} != 1 || -z ${TLS_PORT_OF[$h]} ]]; then
            h2_fail "$h has no HTTPS proxy port: ${TLS_NOTE_OF[$h]:-unknown reason}"
        else
            hops+=("$h")
        fi
    done
    [[ $ACCESS_LOG == 1 ]] || H2_LINES+=("NOTE: BENCH_ACCESS_LOG is not 1: the proxies run without access logs (not as deployed), and the log checks are skipped")
    h2_make_page
    local nport
    nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local have_ngx=0
    h2_start_nghttpx "$nport" && have_ngx=1

    # --- checks ------------------------------------------------------------
    local -a good=()
    for h in "${hops[@]}"; do
        h2_check "$h" "${TLS_PORT_OF[$h]}" && good+=("$h")
    done
    if [[ $have_ngx == 1 ]]; then
        h2_check nghttpx "$nport" || have_ngx=0
    fi

    # --- timed runs, back to back --------------------------------------------
    local -a plan=()
    for h in "${good[@]}"; do plan+=("h2 $h ${TLS_PORT_OF[$h]}" "h1 $h ${TLS_PORT_OF[$h]}"); done
    [[ $have_ngx == 1 ]] && plan+=("h2 nghttpx $nport" "h1 nghttpx $nport")
    if [[ " ${good[*]} " == *" hopcache "* ]]; then
        PID_OF[hopcache-again]=${PID_OF[hopcache]} PORT_OF[hopcache-again]=${PORT_OF[hopcache]}
        plan+=("h2 hopcache-again ${TLS_PORT_OF[hopcache]}")
    fi
    local step kind port
    for step in "${plan[@]}"; do
        read -r kind s port <<<"$step"
        h2_timed "$kind" "$s" "$port"
    done

    # --- report lines ----------------------------------------------------------
    H2_LINES+=("page: $H2_OBJECTS no-store objects http://127.0.0.1:$ORIGIN_PORT/page/0 .. /page/$((H2_OBJECTS - 1)) on the nginx origin, 0.5-8 KiB each, $H2_PAGE_BYTES bytes per page; requested in turn, the whole page in flight, again and again for ${DUR_S} s")
    H2_LINES+=("h2: h2load -t1 -c1 -m$H2_STREAMS -D $DUR_S, one TLS connection to the proxy's TLS port, $H2_STREAMS concurrent streams, each request :scheme http, :authority 127.0.0.1:$ORIGIN_PORT, :path /page/N (-H ':authority: ...' -H ':scheme: http' override what h2load takes from the URI); p50/p99 from h2load's per-request log (--log-file). h1: wrk -t1 -c$H2_H1CONNS with page.lua, $H2_H1CONNS keep-alive TLS connections, one request at a time on each, GET http://127.0.0.1:$ORIGIN_PORT/page/N HTTP/1.1 (absolute-form) -- the 6 parallel connections a browser opens to a proxy without h2 (not one connection with one request at a time)")
    H2_LINES+=("page time = $H2_OBJECTS / rate: how long one page's $H2_OBJECTS objects take at the run's throughput with the whole page in flight (per-request latencies are not comparable between h2 ($H2_STREAMS in flight) and h1 ($H2_H1CONNS in flight): by Little's law latency ~ in flight / rate)")
    local k
    for h in "${good[@]}"; do
        local tag
        tag=$(line_tag "$h")
        H2_LINES+=("${tag}$h h2 / $h h1 ($H2_H1CONNS conns): $(h2_ratio "h2:$h" "h1:$h") ($(rps_of "h2:$h") / $(rps_of "h1:$h") req/s; page ${H2_PAGE_MS[h2:$h]} vs ${H2_PAGE_MS[h1:$h]} ms; p99 per request ${P99[h2:$h]} vs ${P99[h1:$h]})")
        if [[ -n ${RAN[h2:nghttpx]:-} ]]; then
            H2_LINES+=("${tag}$h h2 / nghttpx h2: $(h2_ratio "h2:$h" "h2:nghttpx") ($(rps_of "h2:$h") / $(rps_of "h2:nghttpx") req/s; page ${H2_PAGE_MS[h2:$h]} vs ${H2_PAGE_MS[h2:nghttpx]} ms; p99 ${P99[h2:$h]} vs ${P99[h2:nghttpx]})")
            H2_LINES+=("${tag}$h h1 / nghttpx h1: $(h2_ratio "h1:$h" "h1:nghttpx") ($(rps_of "h1:$h") / $(rps_of "h1:nghttpx") req/s; p99 ${P99[h1:$h]} vs ${P99[h1:nghttpx]})")
        fi
    done
    if [[ -n ${RAN[h2:nghttpx]:-} ]]; then
        H2_LINES+=("nghttpx h2 / nghttpx h1 ($H2_H1CONNS conns): $(h2_ratio "h2:nghttpx" "h1:nghttpx")")
    fi
    if [[ -n ${RAN[h2:hopcache-again]:-} ]]; then
        H2_LINES+=("hopcache h2 again at the end: $(rps_of "h2:hopcache-again") req/s (end / start: $(h2_ratio "h2:hopcache-again" "h2:hopcache"); p99 ${P99[h2:hopcache-again]})")
    fi
    local cpu="proxy CPU (user + system, /proc; hopcache: its worker; nghttpx: master + worker) per completed request:" cl="load generator CPU (one thread each; a run whose client is far below 100% of a core is not limited by the client):"
    for step in "${plan[@]}"; do
        read -r kind s _ <<<"$step"
        cpu+=" $s $kind ${H2_CPU[$kind:$s]:-n/a} us;"
        cl+=" $s $kind ${H2_CLIENT[$kind:$s]:-n/a};"
    done
    H2_LINES+=("${cpu%;}" "${cl%;}")
    for step in "${plan[@]}"; do
        read -r kind s _ <<<"$step"
        H2_LINES+=("($kind) $s: p50 ${P50_H2[$kind:$s]:-n/a}, p99 ${P99[$kind:$s]:-n/a}; connections to the origin open mid-run (busy or idle in the proxy's pool): ${H2_ORIGIN_CONNS[$kind:$s]:-n/a}; ${H2_LOGCHECK[$kind:$s]:-}")
    done
    if [[ $have_ngx == 1 ]]; then
        H2_LINES+=("nghttpx: $(nghttpx --version 2>/dev/null | head -n 1), --http2-proxy --workers=1, TLS frontend (same certificate as hopcache's TLS port), --backend = the nginx origin (nghttpx's proxy mode forwards absolute-form requests to that one next hop; it has no resolver of its own), otherwise its defaults (--http2-max-concurrent-streams 100, like hopcache's [tls] max_concurrent_streams), its own empty --conf (not /etc/nghttpx)$([[ $ACCESS_LOG == 1 ]] && echo ", access log on (combined + \$alpn \$backend_host:\$backend_port)")")
    fi

    # --- stop what (h) started ----------------------------------------------------
    [[ -n ${PID_OF["nghttpx"]:-} ]] && kill -0 "${PID_OF["nghttpx"]}" 2>/dev/null && stop_instance nghttpx
    log "(h) nghttpx stopped"
    sleep 1
}

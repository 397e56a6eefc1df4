#!/usr/bin/env bash
# bench/reload.sh -- hopcache under load while it is reloaded (SIGHUP) every
# second: zero failed requests is the requirement (issue 6), the throughput
# cost is measured against the same load without reloads.
#
# Starts, in one temp dir and on free 127.0.0.1 ports, an nginx origin (one
# worker) serving a 1 KiB no-store object and hopcache (2 workers), then
#   1. baseline: wrk -t1 -c50 -d30s through hopcache (absolute-form requests,
#      bench/absolute.lua), no reloads;
#   2. the same wrk run while SIGHUP goes to hopcache's master every
#      BENCH_RELOAD_INTERVAL seconds for as long as wrk runs.
# Prints wrk's totals for both (requests, requests/s, non-2xx/3xx responses,
# socket errors), the reloads done ("reload: generation" lines in hopcache's
# error log) and the generations finished, the ratio of requests/s (with
# reloads / without), and writes the same as Markdown to BENCH_OUT.
#
# Exit status: 0 when both runs had no socket error and no non-2xx/3xx
# response, reloads happened, none was refused, no worker died and every old
# generation finished; 1 otherwise.
#
# wrk counts a connection the server closes after a response that said
# "Connection: close" as fine (it reconnects); a keep-alive connection closed
# while wrk has a request in flight is a read error -- the drop a reload must
# not cause.
#
# Environment (all optional):
#   HOPCACHE               path to the hopcache binary (default: src/hopcache)
#   BENCH_RELOAD_DURATION  wrk duration of each run, e.g. 30s, 1m (default 30s)
#   BENCH_RELOAD_INTERVAL  seconds between two SIGHUPs (default 1)
#   BENCH_CONNS            wrk connections (default 50)
#   BENCH_WRK_TIMEOUT      wrk per-request timeout (default 2s)
#   BENCH_OUT              Markdown output (default bench/results-reload.md)
#   BENCH_KEEP_TMP         1: keep the temp dir (configs, logs, raw wrk output)
#
# Only loopback traffic; every run is bounded (wrk -d plus a `timeout`
# guard; bounded waits); every process started here is stopped by PID on
# exit and the temp dir is removed.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")

DURATION=${BENCH_RELOAD_DURATION:-30s}
INTERVAL=${BENCH_RELOAD_INTERVAL:-1}
CONNS=${BENCH_CONNS:-50}
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-2s}
OUT=${BENCH_OUT:-$BENCH_DIR/results-reload.md}
KEEP_TMP=${BENCH_KEEP_TMP:-0}
HOPCACHE=${HOPCACHE:-$ROOT/src/hopcache}
WORKERS=2
DRAIN_TIMEOUT=30

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
      no_proxy NO_PROXY ftp_proxy FTP_PROXY

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in nginx wrk curl python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (Debian: apt-get install nginx-light wrk curl python3)"
done
[[ -x $HOPCACHE ]] || die "hopcache binary not found: $HOPCACHE (build it, or set HOPCACHE)"

DUR_S=$(duration_secs "$DURATION")
[[ $DUR_S =~ ^[0-9]+$ && $DUR_S -gt 0 ]] || die "BENCH_RELOAD_DURATION '$DURATION' not understood (use e.g. 30s, 1m)"
if ! [[ $INTERVAL =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v i="$INTERVAL" 'BEGIN { exit !(i >= 0.1) }'; then
    die "BENCH_RELOAD_INTERVAL '$INTERVAL' must be a number of seconds >= 0.1"
fi
[[ $CONNS =~ ^[0-9]+$ ]] || die "BENCH_CONNS must be an integer"

# ---------------------------------------------------------------- cleanup --

WORK=""
declare -a STARTED=()    # long-running servers
declare -a LOAD_PIDS=()  # wrk / the SIGHUP loop, while running



cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local -a all=()
    local p
    for p in "${LOAD_PIDS[@]}"; do all+=("$p"); done
    for p in "${STARTED[@]}"; do
        all+=("$p")
        # shellcheck disable=SC2207
        all+=($(descendants "$p"))
    done
    stop_pids "${all[@]}"
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $KEEP_TMP == 1 ]]; then
            log "kept temp dir $WORK"
        else
            rm -rf -- "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ setup --

LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hopcache-reload.XXXXXX")
chmod 0755 "$WORK"
mkdir -p "$WORK"/{www,nginx,hopcache,results}
log "temp dir $WORK"

read -r ORIGIN_PORT HOP_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)
log "ports: origin=$ORIGIN_PORT hopcache=$HOP_PORT"

head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$WORK/www/1k"
chmod 0755 "$WORK/www"
chmod 0644 "$WORK/www/1k"



# --- nginx origin: one worker, the 1 KiB no-store object ---------------------
nginx_user_line=""
if [[ $EUID -eq 0 ]]; then
    nginx_user_line="user nobody $(getent group nogroup >/dev/null && echo nogroup || echo nobody);"
fi
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
$nginx_user_line
worker_rlimit_nofile 16384;
events { worker_connections 16384; multi_accept on; }
http {
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path       $WORK/nginx/proxy;
    fastcgi_temp_path     $WORK/nginx/fastcgi;
    uwsgi_temp_path       $WORK/nginx/uwsgi;
    scgi_temp_path        $WORK/nginx/scgi;
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server_tokens off;
    etag off;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root $WORK/www;
        location / { add_header Cache-Control "no-store" always; }
    }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
STARTED+=("$NGINX_PID")
wait_port "$ORIGIN_PORT" "$NGINX_PID" nginx || { cat "$WORK/nginx/error.log" >&2 2>/dev/null; die "nginx did not start"; }
log "nginx origin up (pid $NGINX_PID)"

# --- hopcache: 2 workers ---------------------------------------------------------
HOP_INI=$WORK/hopcache/hopcache.ini
HOP_LOG=$WORK/hopcache/error.log
cat > "$HOP_INI" <<EOF
[proxy]
listen = 127.0.0.1:$HOP_PORT
workers = $WORKERS
connect_ports = 1-65535

[limits]
drain_timeout = $DRAIN_TIMEOUT

[acl]
; the origin is on loopback, which the policy refuses by default
private_destinations = allow

[log]
error = $HOP_LOG
level = info
EOF
"$HOPCACHE" -t -c "$HOP_INI" >"$WORK/hopcache/configtest.log" 2>&1 \
    || die "hopcache -t rejects the bench config: $(cat "$WORK/hopcache/configtest.log")"
"$HOPCACHE" -f -c "$HOP_INI" >"$WORK/hopcache/stdout.log" 2>&1 &
HOP_PID=$!
STARTED+=("$HOP_PID")
if ! wait_port "$HOP_PORT" "$HOP_PID" hopcache; then
    tail -n 20 "$HOP_LOG" "$WORK/hopcache/stdout.log" >&2 2>/dev/null || true
    die "hopcache did not start"
fi
log "hopcache up (pid $HOP_PID, port $HOP_PORT, $WORKERS workers)"

TARGET="http://127.0.0.1:$ORIGIN_PORT/1k"
smoke=$(curl -sS --max-time 5 -x "http://127.0.0.1:$HOP_PORT" -o /dev/null \
        -w '%{http_code} %{size_download}' "$TARGET" 2>&1 || true)
[[ $smoke == "200 1024" ]] || die "smoke test through hopcache: '$smoke' (want '200 1024')"

# ------------------------------------------------------------------ runs --

count() { grep -cE "$1" "$HOP_LOG" 2>/dev/null || true; }
workers_now() { ps -o pid= --ppid "$HOP_PID" 2>/dev/null | wc -l; }

declare -A REQS=() RPS=() P99=() EC=() ER=() EW=() ET=() ES=()

run_wrk() {  # run_wrk NAME: wrk in the background; sets WRK_PID
    local name=$1
    log "$name: wrk -t1 -c$CONNS -d$DURATION http://127.0.0.1:$HOP_PORT/ GET $TARGET"
    BENCH_TARGET=$TARGET BENCH_HOST="127.0.0.1:$ORIGIN_PORT" BENCH_CLOSE=0 BENCH_PROXY_AUTH='' \
        timeout -k 5 $((DUR_S + 60)) \
        wrk -t1 -c"$CONNS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
            -s "$BENCH_DIR/absolute.lua" "http://127.0.0.1:$HOP_PORT/" \
            >"$WORK/results/$name.txt" 2>&1 &
    WRK_PID=$!
    LOAD_PIDS=("$WRK_PID")
}

collect() {  # collect NAME RC: parse wrk's BENCH line
    local name=$1 rc=$2 line
    line=$(grep '^BENCH ' "$WORK/results/$name.txt" | tail -n 1 || true)
    if [[ $rc -ne 0 || -z $line ]]; then
        log "$name: wrk failed (exit $rc):"
        tail -n 5 "$WORK/results/$name.txt" >&2
        REQS[$name]=0 RPS[$name]=0 P99[$name]=0 EC[$name]=0 ER[$name]=0 EW[$name]=0 ET[$name]=0 ES[$name]=1
        return 0
    fi
    field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<"$line"; }
    REQS[$name]=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$line")
    RPS[$name]=$(field rps)
    P99[$name]=$(awk -v u="$(field p99_us)" 'BEGIN { printf "%.2f", u / 1000 }')
    EC[$name]=$(field err_connect)
    ER[$name]=$(field err_read)
    EW[$name]=$(field err_write)
    ET[$name]=$(field err_timeout)
    ES[$name]=$(field err_status)
}

# 1. baseline, no reloads
run_wrk baseline
rc=0; wait "$WRK_PID" || rc=$?
LOAD_PIDS=()
collect baseline "$rc"
sleep 1

# 2. with a SIGHUP every INTERVAL seconds for as long as wrk runs
RELOADS_BEFORE=$(count 'reload: generation [0-9]+ started')
FINISHED_BEFORE=$(count 'generation [0-9]+ finished')
HUPS=0
run_wrk reload
while sleep "$INTERVAL" && kill -0 "$WRK_PID" 2>/dev/null; do
    kill -HUP "$HOP_PID" 2>/dev/null || { log "hopcache master gone"; break; }
    HUPS=$((HUPS + 1))
done
rc=0; wait "$WRK_PID" || rc=$?
LOAD_PIDS=()
collect reload "$rc"

# Old generations drain (wrk has closed its connections): bounded wait for
# every one to finish and the worker count to settle.
RELOADS=$(( $(count 'reload: generation [0-9]+ started') - RELOADS_BEFORE ))
for ((i = 0; i < (DRAIN_TIMEOUT + 5) * 10; i++)); do
    FINISHED=$(( $(count 'generation [0-9]+ finished') - FINISHED_BEFORE ))
    ((FINISHED >= RELOADS)) && [[ $(workers_now) -eq $WORKERS ]] && break
    sleep 0.1
done
FINISHED=$(( $(count 'generation [0-9]+ finished') - FINISHED_BEFORE ))
WORKERS_END=$(workers_now)
REFUSED=$(count 'reload refused')
DEATHS=$(count '\[error\].*worker pid [0-9]+ (killed by signal|exited with status)')
KILLED=$(count 'did not stop in time')
kill -0 "$HOP_PID" 2>/dev/null && MASTER_UP=yes || MASTER_UP=no

# ---------------------------------------------------------------- report --

errs() { echo $(( EC[$1] + ER[$1] + EW[$1] + ET[$1] + ES[$1] )); }
RATIO=$(awk -v a="${RPS[reload]}" -v b="${RPS[baseline]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')

VERDICT=PASS
declare -a WHY=()
(( $(errs baseline) == 0 )) || WHY+=("errors in the baseline run")
(( $(errs reload) == 0 )) || WHY+=("errors during reloads")
(( RELOADS > 0 )) || WHY+=("no reload happened")
(( REFUSED == 0 )) || WHY+=("$REFUSED reload(s) refused")
(( FINISHED >= RELOADS )) || WHY+=("only $FINISHED of $RELOADS old generations finished")
(( DEATHS == 0 )) || WHY+=("$DEATHS worker death(s) logged")
(( KILLED == 0 )) || WHY+=("$KILLED worker(s) killed at the drain timeout")
[[ $MASTER_UP == yes ]] || WHY+=("hopcache master exited")
((${#WHY[@]} == 0)) || VERDICT=FAIL

row() {  # row NAME LABEL
    local n=$1
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${REQS[$n]}" "${RPS[$n]}" \
        "${P99[$n]} ms" "${ES[$n]}" "${EC[$n]}" "${ER[$n]}" "${EW[$n]}" "${ET[$n]}"
}

report() {
    echo "# hopcache reload benchmark (issue 6)"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $("$HOPCACHE" -V 2>&1 | head -n 1), load average before: $LOAD_START."
    echo "nginx origin (1 worker) serving a 1 KiB no-store object; hopcache with $WORKERS workers,"
    echo "\`drain_timeout = $DRAIN_TIMEOUT\`; \`wrk -t1 -c$CONNS -d$DURATION --timeout $WRK_TIMEOUT\`"
    echo "with \`bench/absolute.lua\` (absolute-form GET over keep-alive connections);"
    echo "in the second run SIGHUP goes to the master every ${INTERVAL} s while wrk runs."
    echo
    echo "| run | requests | requests/s | p99 | non-2xx/3xx | connect err | read err | write err | timeouts |"
    echo "|---|---|---|---|---|---|---|---|---|"
    row baseline "no reloads"
    row reload "SIGHUP every ${INTERVAL} s"
    echo
    echo "* SIGHUPs sent: $HUPS; reloads done (\`reload: generation\` lines): $RELOADS;" \
         "refused: $REFUSED; old generations finished: $FINISHED"
    echo "* workers at the end: $WORKERS_END (want $WORKERS); worker deaths logged: $DEATHS;" \
         "killed at the drain timeout: $KILLED"
    echo "* requests/s with reloads / without: **$RATIO**"
    echo
    if [[ $VERDICT == PASS ]]; then
        echo "Verdict: **PASS** (no error, no non-2xx/3xx response, every old generation finished)"
    else
        echo "Verdict: **FAIL**: $(IFS=';'; echo "${WHY[*]}")"
    fi
}

report > "$WORK/report.md"
cat "$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
log "wrote $OUT"
[[ $VERDICT == PASS ]]

#!/usr/bin/env bash
# bench/run.sh -- hopcache vs. squid vs. tinyproxy vs. the origin served directly.
#
# Starts, in one temp dir and on free 127.0.0.1 ports, an nginx origin (one
# worker), hopcache, Debian's squid and tinyproxy (one worker each), then runs
#   (a) wrk: a 1 KiB no-store object over keep-alive connections
#   (b) wrk: the same with "Connection: close" on every request
#   (c) curl: a 64 MiB object over HTTPS through N parallel CONNECT tunnels
#   (d) wrk: cache hit of a 1 KiB object (max-age=3600) over keep-alive
#   (e) wrk: cache hit of a 64 KiB object (max-age=3600) over keep-alive
# against each of them, and optionally (not in the default set)
#   (f) hopcache only: (a) with policy off, then with basic auth and a
#       1,000,000-entry domain_file rule loaded (a second hopcache instance)
#   (g) hopcache only, its HTTPS proxy port ([tls], issue 5; throwaway ECDSA
#       P-256 certificate): (g1) the (a) request over TLS keep-alive vs. the
#       plain port; (g2) a new TLS connection per request (wrk with
#       "Connection: close" to https://, like (b); wrk resumes its TLS
#       session) vs. a new TCP connection per request on the plain port;
#       (g3) the same with full handshakes (a second hopcache that issues no
#       session tickets, via OPENSSL_CONF NumTickets = 0). Before timing, a
#       curl through the TLS port must get 200, or (g) fails (non-zero exit).
# and prints a table (also written as Markdown to bench/results-latest.md). See bench/README.md.
#
# Only loopback traffic. Every load run is bounded in time (wrk -d plus a
# `timeout` guard; curl --max-time) and in count (fixed connections, fixed
# number of curl downloads). Every process started here is stopped by PID on
# exit, and the temp dir is removed (BENCH_KEEP_TMP=1 keeps it).
#
# Environment (all optional):
#   HOPCACHE                path to the hopcache binary (default: src/hopcache)
#   BENCH_DURATION          wrk duration per run, e.g. 10s, 30s, 1m (default 10s)
#   BENCH_CONNS             wrk connections (default 50)
#   BENCH_THREADS           wrk threads (default 1, see below)
#   BENCH_WRK_TIMEOUT       wrk per-request timeout (default 2s, wrk's default)
#   BENCH_CONNECT_PARALLEL  parallel tunnels in (c) (default 4)
#   BENCH_CONNECT_ROUNDS    rounds of parallel downloads in (c) (default 3)
#   BENCH_BIG_MIB           size of the (c) object in MiB (default 64)
#   BENCH_SERVERS           subset of "direct hopcache squid tinyproxy"
#   BENCH_SCENARIOS         subset of "a b c d e f g" (default: "a b c d e")
#   BENCH_POLICY_DOMAINS    entries in the (f) domain list (default 1000000)
#   BENCH_ACCESS_LOG        1: proxies write access logs (temp dir); default 0
#   BENCH_ORIGIN_ACCESS_LOG 1: nginx writes an access log (temp dir); default 0
#   BENCH_OUT               Markdown output (default bench/results-latest.md)
#   BENCH_KEEP_TMP          1: keep the temp dir (logs, raw wrk output)
#
# wrk runs with -t1 on purpose: the reference machine has 2 cores, and the
# proxy under test (one worker), the origin (one worker) and the load
# generator already compete for them. More wrk threads would only steal CPU
# from the servers being measured and make the numbers noisier, not higher.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")

DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-50}
THREADS=${BENCH_THREADS:-1}
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-2s}
CONNECT_PAR=${BENCH_CONNECT_PARALLEL:-4}
CONNECT_ROUNDS=${BENCH_CONNECT_ROUNDS:-3}
BIG_MIB=${BENCH_BIG_MIB:-64}
SERVERS=${BENCH_SERVERS:-direct hopcache squid tinyproxy}
SCENARIOS=${BENCH_SCENARIOS:-a b c d e}
POLICY_DOMAINS=${BENCH_POLICY_DOMAINS:-1000000}
ACCESS_LOG=${BENCH_ACCESS_LOG:-0}
ORIGIN_ACCESS_LOG=${BENCH_ORIGIN_ACCESS_LOG:-0}
OUT=${BENCH_OUT:-$BENCH_DIR/results-latest.md}
KEEP_TMP=${BENCH_KEEP_TMP:-0}
HOPCACHE=${HOPCACHE:-$ROOT/src/hopcache}

# A proxy from the caller's environment must not hijack or bypass anything.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
      no_proxy NO_PROXY ftp_proxy FTP_PROXY

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in nginx wrk curl openssl python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (Debian: apt-get install nginx-light wrk curl openssl python3)"
done

# wrk duration -> seconds, for the outer `timeout` guard.
DUR_S=$(duration_secs "$DURATION")
[[ $DUR_S =~ ^[0-9]+$ ]] || die "BENCH_DURATION '$DURATION' not understood (use e.g. 10s, 1m)"
[[ $CONNS =~ ^[0-9]+$ && $CONNECT_PAR =~ ^[0-9]+$ && $CONNECT_ROUNDS =~ ^[0-9]+$ && $BIG_MIB =~ ^[0-9]+$ && $POLICY_DOMAINS =~ ^[0-9]+$ ]] \
    || die "BENCH_CONNS / BENCH_CONNECT_* / BENCH_BIG_MIB / BENCH_POLICY_DOMAINS must be integers"

# ---------------------------------------------------------------- cleanup --

WORK=""
declare -a STARTED=()     # PIDs of long-running servers we started
declare -a LOAD_PIDS=()   # PIDs of load generators currently running



cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local -a all=()
    local p
    # Load generators first, then the servers together with their workers
    # (collected before the masters go away, so nothing is left orphaned).
    for p in "${LOAD_PIDS[@]}"; do
        all+=("$p")
    done
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

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hopcache-bench.XXXXXX")
# Servers drop privileges when started as root (nginx workers, squid,
# tinyproxy); they must be able to read the documents and the config.
chmod 0755 "$WORK"
mkdir -p "$WORK"/{www,tls,nginx,squid,tinyproxy,hopcache,results}
log "temp dir $WORK"

# Free loopback ports picked by the kernel (all bound at once so they are
# distinct, then released for the servers to take).
read -r ORIGIN_PORT TLS_PORT HOP_PORT SQUID_PORT TINY_PORT HOP_POLICY_PORT HOP_NOTIX_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(7):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)
log "ports: origin=$ORIGIN_PORT tls=$TLS_PORT hopcache=$HOP_PORT squid=$SQUID_PORT tinyproxy=$TINY_PORT"

BIG_NAME="${BIG_MIB}m"
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$WORK/www/1k"
head -c "$BIG_BYTES" /dev/urandom > "$WORK/www/$BIG_NAME"
# Cacheable objects (nginx adds Cache-Control: max-age=3600 under /cached/).
mkdir -p "$WORK/www/cached"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$WORK/www/cached/1k"
head -c 65536 /dev/urandom > "$WORK/www/cached/64k"
chmod 0755 "$WORK/www" "$WORK/www/cached"
chmod 0644 "$WORK/www/1k" "$WORK/www/$BIG_NAME" "$WORK/www/cached/1k" "$WORK/www/cached/64k"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    >"$WORK/tls/openssl.log" 2>&1 || die "openssl failed: $(cat "$WORK/tls/openssl.log")"

# (g): hopcache's HTTPS proxy port gets its own throwaway certificate, of the
# kind a typical deployment uses: ECDSA P-256 (every full handshake costs the
# server one signature with this key; an RSA 2048 one would be much dearer).
WANT_TLS=0
[[ " $SCENARIOS " == *" g "* ]] && WANT_TLS=1
if [[ $WANT_TLS == 1 ]]; then
    mkdir -p "$WORK/hopcache-tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$WORK/hopcache-tls/key.pem" -out "$WORK/hopcache-tls/cert.pem" -days 2 \
        -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        >"$WORK/hopcache-tls/openssl.log" 2>&1 \
        || die "openssl failed: $(cat "$WORK/hopcache-tls/openssl.log")"
fi

# Unprivileged user/group for servers that switch users when run as root.
RUN_USER=nobody
RUN_GROUP=$(getent group nogroup >/dev/null && echo nogroup || echo nobody)

render() {  # render TEMPLATE OUT KEY=VALUE...
    local tmpl=$1 out=$2 kv key val content
    shift 2
    content=$(<"$tmpl")
    for kv in "$@"; do
        key=${kv%%=*}
        val=${kv#*=}
        content=${content//@"$key"@/$val}
    done
    printf '%s\n' "$content" > "$out"
    if grep -q '@[A-Z_]*@' "$out"; then
        die "unrendered placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"
    fi
}



declare -A PID_OF=() PORT_OF=() NOTE_OF=()
PORT_OF[direct]=$ORIGIN_PORT
PORT_OF[hopcache]=$HOP_PORT
PORT_OF[squid]=$SQUID_PORT
PORT_OF[tinyproxy]=$TINY_PORT

wants() { [[ " $SERVERS " == *" $1 "* ]]; }

# --- nginx origin --------------------------------------------------------
nginx_user_line=""
[[ $EUID -eq 0 ]] && nginx_user_line="user $RUN_USER $RUN_GROUP;"
nginx_access="access_log off;"
[[ $ORIGIN_ACCESS_LOG == 1 ]] && nginx_access="access_log $WORK/nginx/access.log;"
render "$BENCH_DIR/conf/nginx.conf.in" "$WORK/nginx/nginx.conf" \
    DIR="$WORK" HTTP_PORT="$ORIGIN_PORT" TLS_PORT="$TLS_PORT" \
    USER_LINE="$nginx_user_line" ACCESS_LOG_LINE="$nginx_access"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
    >"$WORK/nginx/stdout.log" 2>&1 &
PID_OF[nginx]=$!
STARTED+=("${PID_OF[nginx]}")
if ! wait_port "$ORIGIN_PORT" "${PID_OF[nginx]}" nginx || ! wait_port "$TLS_PORT" "${PID_OF[nginx]}" nginx; then
    cat "$WORK/nginx/error.log" "$WORK/nginx/stdout.log" >&2 2>/dev/null || true
    die "nginx origin did not start"
fi
log "nginx origin up (pid ${PID_OF[nginx]})"

# --- hopcache --------------------------------------------------------------
start_hopcache() {
    if [[ ! -x $HOPCACHE ]]; then
        NOTE_OF[hopcache]="skipped: $HOPCACHE not found (build it first, or set HOPCACHE)"
        return 1
    fi
    write_hopcache_ini() {  # write_hopcache_ini WITH_CACHE(0|1) WITH_TLS(0|1)
        {
            printf '[proxy]\nlisten = 127.0.0.1:%s\nworkers = 1\nconnect_ports = 1-65535\n' "$HOP_PORT"
            # the origin is on loopback, which the policy refuses by default
            printf '[acl]\nprivate_destinations = allow\n'
            printf '[log]\nerror = %s\n' "$WORK/hopcache/error.log"
            if [[ $ACCESS_LOG == 1 ]]; then printf 'access = %s\n' "$WORK/hopcache/access.log"; fi
            if [[ $1 == 1 ]]; then
                # The LMDB store lives in the temp dir too (removed on exit).
                printf '[cache]\nenabled = yes\ndir = %s\nsize = 256M\nmax_object_size = 16M\n' \
                    "$WORK/hopcache-cache"
            fi
            if [[ $2 == 1 ]]; then
                # (g): the HTTPS proxy port, on a port the kernel picks
                # (read back from the master's "listening for TLS on" line).
                printf '[tls]\nlisten = 127.0.0.1:0\ncertificate = %s\nprivate_key = %s\n' \
                    "$WORK/hopcache-tls/cert.pem" "$WORK/hopcache-tls/key.pem"
            fi
        } > "$WORK/hopcache/hopcache.ini"
    }
    # A hopcache without the cache rejects the [cache] section: run it
    # without (the cache-hit scenarios then show it serving misses); one
    # without the HTTPS port rejects [tls]: run it without ((g) then fails).
    # The first combination `hopcache -t` accepts wins.
    local combo with_cache with_tls ok=0
    : >"$WORK/hopcache/configtest.log"
    for combo in "1 $WANT_TLS" "0 $WANT_TLS" "1 0" "0 0"; do
        read -r with_cache with_tls <<<"$combo"
        write_hopcache_ini "$with_cache" "$with_tls"
        if "$HOPCACHE" -t -c "$WORK/hopcache/hopcache.ini" >>"$WORK/hopcache/configtest.log" 2>&1; then
            ok=1
            break
        fi
    done
    if [[ $ok == 0 ]]; then
        with_cache=1 with_tls=$WANT_TLS
        write_hopcache_ini 1 "$WANT_TLS"   # let the start-up below fail with its reason
    fi
    HOP_HAS_TLS=$with_tls
    if [[ $with_cache == 0 ]]; then
        NOTE_OF[hopcache]="config with [cache] rejected, running without the cache: $(head -n 1 "$WORK/hopcache/configtest.log")"
        log "hopcache: ${NOTE_OF[hopcache]}"
    fi
    if [[ $WANT_TLS == 1 && $with_tls == 0 ]]; then
        HOP_TLS_NOTE="config with [tls] rejected, running without the HTTPS port: $(head -n 1 "$WORK/hopcache/configtest.log")"
        log "hopcache: $HOP_TLS_NOTE"
    fi
    "$HOPCACHE" -f -c "$WORK/hopcache/hopcache.ini" >"$WORK/hopcache/stdout.log" 2>&1 &
    PID_OF[hopcache]=$!
    STARTED+=("${PID_OF[hopcache]}")
    if ! wait_port "$HOP_PORT" "${PID_OF[hopcache]}" hopcache; then
        tail -n 20 "$WORK/hopcache/error.log" "$WORK/hopcache/stdout.log" >&2 2>/dev/null || true
        NOTE_OF[hopcache]="skipped: hopcache did not start (see its error log)"
        return 1
    fi
    if [[ $HOP_HAS_TLS == 1 ]]; then
        if HOP_TLS_PORT=$(tls_port_from_log "${PID_OF[hopcache]}" "$WORK/hopcache"); then
            log "hopcache HTTPS proxy port: 127.0.0.1:$HOP_TLS_PORT"
        else
            HOP_TLS_NOTE="no 'listening for TLS on 127.0.0.1:PORT' in hopcache's log within 15 s"
            log "hopcache: $HOP_TLS_NOTE"
        fi
    fi
}

# The port of a hopcache's HTTPS listener ([tls] listen = 127.0.0.1:0): the
# master logs "listening for TLS on 127.0.0.1:PORT" once it is bound.
tls_port_from_log() {  # tls_port_from_log PID DIR -> prints PORT; 1 if none within 15 s
    local pid=$1 dir=$2 i p
    for ((i = 0; i < 150; i++)); do
        p=$(cat "$dir/error.log" "$dir/stdout.log" 2>/dev/null \
            | sed -n 's/.*listening for TLS on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' | tail -n 1)
        if [[ -n $p ]]; then echo "$p"; return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
HOP_HAS_TLS=0
HOP_TLS_PORT=""
HOP_TLS_NOTE=""

# --- squid -----------------------------------------------------------------
start_squid() {
    if ! command -v squid >/dev/null 2>&1; then
        NOTE_OF[squid]="skipped: squid not installed (apt-get install squid)"
        return 1
    fi
    local user_line="" access="access_log none"
    if [[ $EUID -eq 0 ]]; then
        # Squid refuses to keep running as root; it switches to
        # cache_effective_user, which must be able to write its files.
        local su=proxy
        getent passwd proxy >/dev/null || su=$RUN_USER
        user_line="cache_effective_user $su"
        chown "$su" "$WORK/squid"
    fi
    [[ $ACCESS_LOG == 1 ]] && access="access_log stdio:$WORK/squid/access.log"
    render "$BENCH_DIR/conf/squid.conf.in" "$WORK/squid/squid.conf" \
        DIR="$WORK" PORT="$SQUID_PORT" TLS_PORT="$TLS_PORT" \
        USER_LINE="$user_line" ACCESS_LOG_LINE="$access"
    if ! squid -k parse -f "$WORK/squid/squid.conf" >"$WORK/squid/parse.log" 2>&1; then
        tail -n 20 "$WORK/squid/parse.log" >&2
        NOTE_OF[squid]="skipped: squid rejected its config"
        return 1
    fi
    squid -N -f "$WORK/squid/squid.conf" >"$WORK/squid/stdout.log" 2>&1 &
    PID_OF[squid]=$!
    STARTED+=("${PID_OF[squid]}")
    if ! wait_port "$SQUID_PORT" "${PID_OF[squid]}" squid; then
        tail -n 20 "$WORK/squid/cache.log" "$WORK/squid/stdout.log" >&2 2>/dev/null || true
        NOTE_OF[squid]="skipped: squid did not start (see cache.log)"
        return 1
    fi
}

# --- tinyproxy -------------------------------------------------------------
start_tinyproxy() {
    if ! command -v tinyproxy >/dev/null 2>&1; then
        NOTE_OF[tinyproxy]="skipped: tinyproxy not installed (apt-get install tinyproxy)"
        return 1
    fi
    local user_line="" level=Error
    if [[ $EUID -eq 0 ]]; then
        user_line=$'User '"$RUN_USER"$'\nGroup '"$RUN_GROUP"
        chown "$RUN_USER:$RUN_GROUP" "$WORK/tinyproxy"
    fi
    [[ $ACCESS_LOG == 1 ]] && level=Connect
    render "$BENCH_DIR/conf/tinyproxy.conf.in" "$WORK/tinyproxy/tinyproxy.conf" \
        DIR="$WORK" PORT="$TINY_PORT" TLS_PORT="$TLS_PORT" \
        USER_LINE="$user_line" LOG_LEVEL="$level"
    tinyproxy -d -c "$WORK/tinyproxy/tinyproxy.conf" >"$WORK/tinyproxy/stdout.log" 2>&1 &
    PID_OF[tinyproxy]=$!
    STARTED+=("${PID_OF[tinyproxy]}")
    if ! wait_port "$TINY_PORT" "${PID_OF[tinyproxy]}" tinyproxy; then
        tail -n 20 "$WORK/tinyproxy/tinyproxy.log" "$WORK/tinyproxy/stdout.log" >&2 2>/dev/null || true
        NOTE_OF[tinyproxy]="skipped: tinyproxy did not start (see its log)"
        return 1
    fi
}

declare -a ACTIVE=()
for s in $SERVERS; do
    case $s in
        direct) ACTIVE+=(direct) ;;
        hopcache|squid|tinyproxy)
            if "start_$s"; then
                ACTIVE+=("$s")
                log "$s up (pid ${PID_OF[$s]}, port ${PORT_OF[$s]})"
            else
                log "${NOTE_OF[$s]}"
            fi ;;
        *) die "unknown server '$s' in BENCH_SERVERS" ;;
    esac
done
# The origin's PID stands for "direct" in the RSS column.
PID_OF[direct]=${PID_OF[nginx]}

# Smoke test each server once: a plain GET and a GET through a CONNECT
# tunnel must both return the 1 KiB object. Failures are noted, not fatal.
smoke() {
    local s=$1 out out2 want="200 1024"
    local -a px=(--noproxy '*')
    [[ $s != direct ]] && px=(-x "http://127.0.0.1:${PORT_OF[$s]}")
    out=$(curl -sS --max-time 5 "${px[@]}" -o /dev/null -w '%{http_code} %{size_download}' \
          "http://127.0.0.1:$ORIGIN_PORT/1k" 2>&1 || true)
    [[ $s != direct ]] && px+=(-p)
    out2=$(curl -sS -k --max-time 5 "${px[@]}" -o /dev/null -w '%{http_code} %{size_download}' \
           "https://127.0.0.1:$TLS_PORT/1k" 2>&1 || true)
    if [[ $out != "$want" || $out2 != "$want" ]]; then
        NOTE_OF[$s]="${NOTE_OF[$s]:+${NOTE_OF[$s]}; }smoke test: http '$out', https '$out2' (want '$want')"
        log "$s: ${NOTE_OF[$s]}"
    fi
    local target="http://127.0.0.1:$ORIGIN_PORT/1k"
    [[ $s == direct ]] && target=/1k
    KEEPALIVE_OF[$s]=$(timeout 10 python3 "$BENCH_DIR/keepalive_probe.py" \
        "${PORT_OF[$s]}" "$target" "127.0.0.1:$ORIGIN_PORT" 2>&1 || echo "error: probe failed")
    if [[ ${KEEPALIVE_OF[$s]} != keepalive ]]; then
        NOTE_OF[$s]="${NOTE_OF[$s]:+${NOTE_OF[$s]}; }keep-alive probe: ${KEEPALIVE_OF[$s]}"
        if [[ ${KEEPALIVE_OF[$s]} == closes ]]; then NOTE_OF[$s]+=" (closes the client connection after every response without sending 'Connection: close'; wrk counts each such EOF as a read error)"; fi
        log "$s: ${NOTE_OF[$s]}"
    fi
}
declare -A KEEPALIVE_OF=()
for s in "${ACTIVE[@]}"; do smoke "$s"; done

# ------------------------------------------------------------ measurement --

status_kib() {  # status_kib PID FIELD -> /proc/PID/status FIELD (VmRSS, VmHWM) in KiB, 0 if gone
    awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}
rss_kib() { status_kib "$1" VmRSS; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# RSS of a server's worker (the process that does the work):
#   hopcache, nginx (direct): the largest child of the master (master
#   listed separately in the detail)
#   squid -N, tinyproxy: the process itself (both are single processes;
#   children, if any, are included in the max)
# The detail also gives each process's peak RSS (VmHWM) since start.
declare -A RSS_OF=() RSS_MAX=() RSS_DETAIL=()
measure_rss() {
    local s=$1 pid=${PID_OF[$1]} k r max=0 detail
    local -a kids
    # shellcheck disable=SC2207
    kids=($(descendants "$pid"))
    case $s in
        hopcache|hopcache+policy|hopcache+notickets|direct)
            for k in "${kids[@]}"; do
                r=$(rss_kib "$k"); ((r > max)) && max=$r
            done
            detail="master $(mib "$(rss_kib "$pid")") MiB; workers:"
            for k in "${kids[@]}"; do
                detail+=" $(mib "$(rss_kib "$k")") MiB (peak $(mib "$(status_kib "$k" VmHWM)"))"
            done ;;
        *)
            max=$(rss_kib "$pid")
            for k in "${kids[@]}"; do
                r=$(rss_kib "$k"); ((r > max)) && max=$r
            done
            detail="pid $pid, peak $(mib "$(status_kib "$pid" VmHWM)") MiB"
            ((${#kids[@]})) && detail+=" (+${#kids[@]} children)" ;;
    esac
    RSS_OF[$s]=$max
    RSS_DETAIL[$s]=$detail
    if ((max > ${RSS_MAX[$s]:-0})); then RSS_MAX[$s]=$max; fi
}

fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Results, keyed "scenario:server".
declare -A RATE=() P99=() ERRS=() ERRDETAIL=() RSSROW=() RAN=()

# Object of each wrk scenario and its size.
# (g) runs are keyed g1p/g1t (keep-alive, plain/TLS port), g2p/g2t (a new
# connection per request, plain/TLS port) and g3t (TLS, full handshakes).
declare -A PATH_OF=([a]=/1k [b]=/1k [d]=/cached/1k [e]=/cached/64k [f]=/1k
                    [g1p]=/1k [g1t]=/1k [g2p]=/1k [g2t]=/1k [g3t]=/1k)
declare -A SIZE_OF=([a]=1024 [b]=1024 [d]=1024 [e]=65536 [f]=1024)
declare -A CLOSE_OF=([b]=1 [g2p]=1 [g2t]=1 [g3t]=1)   # "Connection: close" on every request
declare -A PROXY_AUTH_OF=()   # server -> Proxy-Authorization value sent by wrk

run_wrk() {  # run_wrk SCENARIO SERVER [URL] -- URL: what wrk connects to (default: the server's plain port)
    local sc=$1 s=$2 url=${3:-} target close=${CLOSE_OF[$1]:-0} raw line path=${PATH_OF[$1]}
    raw="$WORK/results/$sc-$s.txt"
    if [[ $s == direct ]]; then
        url=${url:-"http://127.0.0.1:$ORIGIN_PORT/"}
        target=$path
    else
        url=${url:-"http://127.0.0.1:${PORT_OF[$s]}/"}
        target="http://127.0.0.1:$ORIGIN_PORT$path"
    fi
    log "($sc) $s: wrk -t$THREADS -c$CONNS -d$DURATION $url GET $target$([[ $close == 1 ]] && echo ' + Connection: close')"
    BENCH_TARGET=$target BENCH_HOST="127.0.0.1:$ORIGIN_PORT" BENCH_CLOSE=$close \
        BENCH_PROXY_AUTH=${PROXY_AUTH_OF[$s]:-} \
        timeout -k 5 $((DUR_S + 60)) \
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
            -s "$BENCH_DIR/absolute.lua" "$url" >"$raw" 2>&1 &
    LOAD_PIDS=($!)
    local rc=0
    wait "${LOAD_PIDS[0]}" || rc=$?
    LOAD_PIDS=()
    line=$(grep '^BENCH ' "$raw" | tail -n 1 || true)
    if [[ $rc -ne 0 || -z $line ]]; then
        RATE[$sc:$s]=0; P99[$sc:$s]="n/a"; ERRS[$sc:$s]=1
        ERRDETAIL[$sc:$s]="wrk failed (exit $rc)"
        log "wrk failed (exit $rc):"; tail -n 5 "$raw" >&2
        return 0
    fi
    local rps p99 ec er ew et es
    rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
    p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
    ec=$(sed -n 's/.* err_connect=\([0-9]*\).*/\1/p' <<<"$line")
    er=$(sed -n 's/.* err_read=\([0-9]*\).*/\1/p' <<<"$line")
    ew=$(sed -n 's/.* err_write=\([0-9]*\).*/\1/p' <<<"$line")
    et=$(sed -n 's/.* err_timeout=\([0-9]*\).*/\1/p' <<<"$line")
    es=$(sed -n 's/.* err_status=\([0-9]*\).*/\1/p' <<<"$line")
    RATE[$sc:$s]=$rps
    P99[$sc:$s]=$(awk -v u="$p99" 'BEGIN { printf "%.2f ms", u / 1000 }')
    ERRS[$sc:$s]=$((ec + er + ew + et + es))
    local d=""
    ((ec)) && d+="connect $ec "
    ((er)) && d+="read $er "
    ((ew)) && d+="write $ew "
    ((et)) && d+="timeout $et "
    ((es)) && d+="non-2xx/3xx $es "
    ERRDETAIL[$sc:$s]=${d% }
    REQS[$sc:$s]=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$line")
    # A server that closes every connection after one complete response
    # without announcing it makes wrk count one read error per connection
    # (see keepalive_probe.py). When the probe saw exactly that, and the
    # read errors are all there is, show them as such instead of as failures.
    # (The hopcache verdict below still counts them.)
    local done_reqs
    done_reqs=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$line")
    if [[ ${KEEPALIVE_OF[$s]:-} == closes ]] && ((er > 0 && ec + ew + et + es == 0)) \
        && ((er <= done_reqs && done_reqs - er <= CONNS)); then
        BENIGN[$sc:$s]=$er
    fi
}
declare -A BENIGN=() REQS=()

# ------------------------------------------------------ cache scenarios --
# Before the timed run of (d)/(e), each proxy gets the object a few times
# (warm-up) and the last response must be a hit:
#   hopcache: "Cache-Status: hopcache; hit..."
#   squid:    "X-Cache: HIT..." (or at least an Age header)
#   tinyproxy does not cache: measured as a peer, flagged in the table.
# During the run, the proxy's own counters tell how many requests were hits
# (hopcache --cache-stats; squid's cache manager "counters" page).
declare -A HIT_OK=() HIT_INFO=() HIT_WARN=() RUN_HITS=()

warm_cache() {  # warm_cache SCENARIO SERVER
    local sc=$1 s=$2 path=${PATH_OF[$1]} size=${SIZE_OF[$1]} i out="" tail
    local -a px=(--noproxy '*')
    [[ $s != direct ]] && px=(-x "http://127.0.0.1:${PORT_OF[$s]}")
    for i in 1 2 3; do
        out=$(curl -sS --max-time 5 "${px[@]}" -A hopcache-bench/warmup -D - -o /dev/null \
              -w 'BENCH-RESULT %{http_code} %{size_download}\n' \
              "http://127.0.0.1:$ORIGIN_PORT$path" 2>&1 || true)
        sleep 0.2
    done
    out=${out//$'\r'/}
    tail=$(sed -n 's/^BENCH-RESULT //p' <<<"$out")
    local cs xc age
    cs=$(grep -i '^Cache-Status:' <<<"$out" | head -n 1 | sed 's/^[^:]*: *//' || true)
    xc=$(grep -i '^X-Cache:' <<<"$out" | head -n 1 | sed 's/^[^:]*: *//' || true)
    age=$(grep -i '^Age:' <<<"$out" | head -n 1 | sed 's/^[^:]*: *//' || true)
    local seen="3rd response: status/size '$tail'"
    [[ -n $cs ]] && seen+=", Cache-Status '$cs'"
    [[ -n $xc ]] && seen+=", X-Cache '$xc'"
    [[ -n $age ]] && seen+=", Age '$age'"
    [[ -z $cs && -z $xc && -z $age ]] && seen+=", no Cache-Status/X-Cache/Age"
    HIT_INFO[$sc:$s]=$seen
    if [[ $tail != "200 $size" ]]; then
        HIT_OK[$sc:$s]=0
        HIT_WARN[$sc:$s]="WARNING: warm-up got '$tail', want '200 $size'"
        log "($sc) $s: ${HIT_WARN[$sc:$s]}"
        return 0
    fi
    case $s in
        direct) HIT_OK[$sc:$s]=1; return 0 ;;
        hopcache) [[ $cs =~ ^[Hh]opcache\;[[:space:]]*hit ]] && HIT_OK[$sc:$s]=1 ;;
        squid) [[ $xc =~ ^HIT || -n $age ]] && HIT_OK[$sc:$s]=1 ;;
        *) [[ $cs =~ \;[[:space:]]*hit || $xc =~ ^HIT || -n $age ]] && HIT_OK[$sc:$s]=1 ;;
    esac
    if [[ ${HIT_OK[$sc:$s]:-0} == 1 ]]; then
        log "($sc) $s: cache hit verified ($seen)"
    else
        HIT_OK[$sc:$s]=0
        if [[ $s == tinyproxy ]]; then
            HIT_WARN[$sc:$s]="WARNING: no cache hits (tinyproxy has no cache; measured as a peer)"
        else
            HIT_WARN[$sc:$s]="WARNING: does not serve cache hits after warm-up ($seen)"
        fi
        log "($sc) $s: ${HIT_WARN[$sc:$s]}"
    fi
}

# Hit/miss counters of a proxy, "HITS MISSES" (empty when unavailable).
# A hopcache worker writes its counts to the store at most once a second,
# and only when it counts the next hit or miss: so wait a second, make one
# request of the scenario's object (a hit, counted in what is printed), then
# read. The caller subtracts that request from the "after" reading.
cache_counters() {  # cache_counters SCENARIO SERVER
    local sc=$1 s=$2 out
    case $s in
        hopcache)
            sleep 1.1
            curl -sS --max-time 5 -x "http://127.0.0.1:$HOP_PORT" -A hopcache-bench/flush -o /dev/null \
                "http://127.0.0.1:$ORIGIN_PORT${PATH_OF[$sc]}" 2>/dev/null || true
            sleep 0.1
            out=$(timeout 10 "$HOPCACHE" --cache-stats -c "$WORK/hopcache/hopcache.ini" 2>/dev/null || true)
            awk '
                { line = tolower($0) }
                match(line, /(^|[^a-z])hits[ \t]*[:=]?[ \t]*[0-9]+/) { s = substr(line, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); h = s }
                match(line, /(^|[^a-z])misses[ \t]*[:=]?[ \t]*[0-9]+/) { s = substr(line, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); m = s }
                END { if (h != "" && m != "") print h, m }' <<<"$out" ;;
        squid)
            out=$(curl -sS --max-time 5 --noproxy '*' \
                  "http://127.0.0.1:${PORT_OF[squid]}/squid-internal-mgr/counters" 2>/dev/null || true)
            awk -F' *= *' '
                $1 == "client_http.requests" { r = $2 }
                $1 == "client_http.hits" { h = $2 }
                END { if (r != "" && h != "") print h, r - h }' <<<"$out" ;;
    esac
}

run_connect() {  # run_connect SERVER -- scenario (c)
    local s=$1 round i f rc bytes=0 errs=0 t0 t1 wall=0 code size
    local url="https://127.0.0.1:$TLS_PORT/$BIG_NAME" detail=""
    local -a px=(--noproxy '*')
    [[ $s != direct ]] && px=(-p -x "http://127.0.0.1:${PORT_OF[$s]}")
    log "(c) $s: $CONNECT_ROUNDS x $CONNECT_PAR parallel curl of $BIG_MIB MiB over TLS$([[ $s != direct ]] && echo ' via CONNECT')"
    for ((round = 1; round <= CONNECT_ROUNDS; round++)); do
        LOAD_PIDS=()
        t0=$(date +%s.%N)
        for ((i = 1; i <= CONNECT_PAR; i++)); do
            f="$WORK/results/c-$s-$round-$i"
            curl -sS -k --max-time 120 "${px[@]}" -o /dev/null \
                -w '%{http_code} %{size_download} %{time_total}\n' "$url" >"$f.out" 2>"$f.err" &
            LOAD_PIDS+=($!)
        done
        for ((i = 1; i <= CONNECT_PAR; i++)); do
            rc=0
            wait "${LOAD_PIDS[i - 1]}" || rc=$?
            f="$WORK/results/c-$s-$round-$i"
            read -r code size _ <"$f.out" || { code=000; size=0; }
            bytes=$((bytes + size))
            if ((rc != 0)); then
                errs=$((errs + 1)); detail+="curl exit $rc; "
            elif [[ $code != 200 || $size != "$BIG_BYTES" ]]; then
                errs=$((errs + 1)); detail+="status $code size $size; "
            fi
        done
        t1=$(date +%s.%N)
        LOAD_PIDS=()
        wall=$(awk -v w="$wall" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", w + (b - a) }')
    done
    RATE[c:$s]=$(awk -v b="$bytes" -v w="$wall" 'BEGIN { if (w > 0) printf "%.2f", b / w / 1e6; else print 0 }')
    P99[c:$s]="n/a"
    ERRS[c:$s]=$errs
    detail=${detail%; }
    ERRDETAIL[c:$s]=${detail:0:120}
}

# ------------------------------------------------------- policy scenario --
# (f), hopcache only (issue 4): the (a) request, first against the running
# hopcache (policy off: the bench INI only allows private destinations),
# then against a second hopcache started from the same INI plus
#   [auth] scheme = basic, htpasswd = TMP (one apr1 user)
#   [acl] default = allow, rules = blocklist, office
#   [rule.blocklist] domain_file = TMP (BENCH_POLICY_DOMAINS names), deny
#   [rule.office] src = 127.0.0.0/8, ports = 1-65535, allow
# with wrk sending Proxy-Authorization. Before timing, the policy instance
# must answer 407 without credentials, 403 naming "blocklist" for a listed
# domain and 200 for the origin; otherwise the scenario fails (non-zero
# exit). The second instance is stopped by PID afterwards.
declare -a POLICY_LINES=()
POLICY_FAILED=""

policy_ratio() {
    local off=${RATE[f:hopcache]:-} on=${RATE[f:hopcache+policy]:-}
    if [[ -z $off || -z $on ]]; then echo "n/a"; return; fi
    awk -v a="$off" -v b="$on" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "n/a" }'
}

policy_fail() {
    POLICY_FAILED=$*
    log "error: (f) $*"
    POLICY_LINES+=("FAIL: $*")
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

run_policy() {
    if [[ " ${ACTIVE[*]} " != *" hopcache "* ]]; then
        log "(f) skipped: hopcache is not running"
        POLICY_LINES+=("skipped: hopcache is not running (${NOTE_OF[hopcache]:-not in BENCH_SERVERS})")
        return 0
    fi
    local dir="$WORK/hopcache-policy" t0 t1 pw hash auth ini out code
    mkdir -p "$dir"

    # Credentials: one apr1 user (openssl, no apache2-utils needed).
    pw=$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 12)
    hash=$(openssl passwd -apr1 "$pw") || { policy_fail "openssl passwd -apr1 failed"; return 0; }
    printf 'bench:%s\n' "$hash" > "$dir/htpasswd"
    auth="Basic $(printf 'bench:%s' "$pw" | base64 -w0)"

    # The domain list: d1 .. dN.example-block.test, one a line.
    t0=$(now_s)
    awk -v n="$POLICY_DOMAINS" 'BEGIN { print "# bench block list"; for (i = 1; i <= n; i++) printf "d%d.example-block.test\n", i }' \
        > "$dir/blocked.txt"
    t1=$(now_s)
    local lines bytes
    lines=$(( $(wc -l < "$dir/blocked.txt") - 1 ))
    bytes=$(stat -c %s "$dir/blocked.txt")
    log "(f) domain list: $lines entries, $bytes bytes, written in $(elapsed "$t0" "$t1") s"

    # Same INI as the running hopcache (own port, error log and cache dir),
    # with [auth] and the rules added.
    ini="$dir/hopcache.ini"
    awk -v port="$HOP_POLICY_PORT" -v dir="$dir" -v cachedir="$WORK/hopcache-cache-policy" '
        /^\[/ { section = $0 }
        section == "[proxy]" && /^listen = / { print "listen = 127.0.0.1:" port; next }
        /^error = / { print "error = " dir "/error.log"; next }
        /^access = / { print "access = " dir "/access.log"; next }
        /^dir = / { print "dir = " cachedir; next }
        { print }
        /^private_destinations = / { print "default = allow"; print "rules = blocklist, office" }
    ' "$WORK/hopcache/hopcache.ini" > "$ini"
    {
        printf '[auth]\nscheme = basic\nhtpasswd = %s\n' "$dir/htpasswd"
        printf '[rule.blocklist]\ndomain_file = %s\naction = deny\n' "$dir/blocked.txt"
        printf '[rule.office]\nsrc = 127.0.0.0/8\nports = 1-65535\naction = allow\n'
    } >> "$ini"

    # Load time, as far as visible from outside: `hopcache -t` (parses the
    # INI and loads every file it names), then the start-up of the server
    # until its port accepts.
    local t_test t_start
    t0=$(now_s)
    if ! timeout 60 "$HOPCACHE" -t -c "$ini" >"$dir/configtest.log" 2>&1; then
        policy_fail "hopcache -t rejects the policy INI: $(head -n 3 "$dir/configtest.log" | tr '\n' ' ')"
        return 0
    fi
    t1=$(now_s)
    t_test=$(elapsed "$t0" "$t1")
    # the same -t on the policy-off INI, for comparison
    t0=$(now_s)
    timeout 60 "$HOPCACHE" -t -c "$WORK/hopcache/hopcache.ini" >/dev/null 2>&1 || true
    t1=$(now_s)
    local t_test_off
    t_test_off=$(elapsed "$t0" "$t1")
    log "(f) hopcache -t: ${t_test} s with the policy INI, ${t_test_off} s without"

    t0=$(now_s)
    "$HOPCACHE" -f -c "$ini" >"$dir/stdout.log" 2>&1 &
    PID_OF[hopcache+policy]=$!
    STARTED+=("${PID_OF[hopcache+policy]}")
    PORT_OF[hopcache+policy]=$HOP_POLICY_PORT
    if ! wait_port "$HOP_POLICY_PORT" "${PID_OF[hopcache+policy]}" "hopcache (policy)"; then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        policy_fail "hopcache with the policy INI did not start (see its error log)"
        return 0
    fi
    t1=$(now_s)
    t_start=$(elapsed "$t0" "$t1")
    log "(f) hopcache (policy) up (pid ${PID_OF[hopcache+policy]}, port $HOP_POLICY_PORT) after $t_start s"

    # Enforcement checks (a worker may still be loading: retry the first one
    # briefly until it answers at all).
    local px=(-x "http://127.0.0.1:$HOP_POLICY_PORT") i checks=""
    for ((i = 0; i < 50; i++)); do
        code=$(curl -sS --max-time 5 "${px[@]}" -o /dev/null -w '%{http_code}' \
               "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
        [[ $code != 000 && -n $code ]] && break
        sleep 0.1
    done
    if [[ $code != 407 ]]; then
        policy_fail "no credentials: got '$code', want 407 (auth not enforced)"
    else
        checks+="no credentials -> 407; "
    fi
    code=$(curl -sS --max-time 5 "${px[@]}" -U "bench:wrong-$pw" -o /dev/null -w '%{http_code}' \
           "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
    if [[ $code != 407 ]]; then
        policy_fail "wrong password: got '$code', want 407"
    else
        checks+="wrong password -> 407; "
    fi
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -D - \
          -w '\nBENCH-RESULT %{http_code}\n' "http://d42.example-block.test/" 2>&1 || true)
    code=$(sed -n 's/^BENCH-RESULT //p' <<<"$out")
    if [[ $code != 403 ]] || ! grep -q 'blocklist' <<<"$out"; then
        policy_fail "listed domain d42.example-block.test: got '$code'$(grep -q blocklist <<<"$out" || echo ', rule name "blocklist" not in the response'), want 403 naming the rule"
    else
        checks+="d42.example-block.test -> 403 naming 'blocklist'; "
    fi
    # the last entry too (the whole file was loaded) and a subdomain
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -o /dev/null -w '%{http_code}' \
          "http://x.d$POLICY_DOMAINS.example-block.test/" 2>/dev/null || true)
    if [[ $out != 403 ]]; then
        policy_fail "subdomain of the last entry (x.d$POLICY_DOMAINS.example-block.test): got '$out', want 403"
    else
        checks+="x.d$POLICY_DOMAINS.example-block.test -> 403; "
    fi
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -o /dev/null \
          -w '%{http_code} %{size_download}' "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
    if [[ $out != "200 1024" ]]; then
        policy_fail "with credentials, origin /1k: got '$out', want '200 1024'"
    else
        checks+="with credentials, origin -> 200 1024"
    fi
    if [[ -n $POLICY_FAILED ]]; then
        POLICY_LINES+=("enforcement checks failed: not timed (passed: ${checks:-none})")
        return 0
    fi
    log "(f) enforcement verified: $checks"
    measure_rss hopcache+policy
    local rss_idle=${RSS_OF[hopcache+policy]}

    # (1) policy off: the running hopcache; (2) policy on.
    run_wrk f hopcache
    RAN[f:hopcache]=1
    measure_rss hopcache
    RSSROW[f:hopcache]=${RSS_OF[hopcache]}
    sleep 1
    PROXY_AUTH_OF[hopcache+policy]=$auth
    run_wrk f hopcache+policy
    RAN[f:hopcache+policy]=1
    measure_rss hopcache+policy
    RSSROW[f:hopcache+policy]=${RSS_OF[hopcache+policy]}
    local s
    for s in hopcache hopcache+policy; do
        if [[ ${ERRS[f:$s]} != 0 ]]; then
            policy_fail "$s: ${ERRS[f:$s]} errors during the timed run (${ERRDETAIL[f:$s]})"
        fi
    done

    POLICY_LINES+=("ratio policy on / off: $(policy_ratio) ($(printf '%.0f' "${RATE[f:hopcache+policy]}") / $(printf '%.0f' "${RATE[f:hopcache]}") req/s; p99 ${P99[f:hopcache+policy]} vs ${P99[f:hopcache]})")
    POLICY_LINES+=("enforcement verified before timing: $checks")
    POLICY_LINES+=("domain list: $lines entries, $((bytes / 1024)) KiB; hopcache -t: ${t_test} s with it (${t_test_off} s without); start-up until the port accepts: ${t_start} s (hopcache logs no load time)")
    POLICY_LINES+=("hopcache worker RSS with the list loaded: $(fmt_mib "$rss_idle") MiB before the run, $(fmt_mib "${RSS_OF[hopcache+policy]}") MiB after ($(printf '%s' "${RSS_DETAIL[hopcache+policy]}")); policy off: $(fmt_mib "${RSS_OF[hopcache]}") MiB")

    # Stop the policy instance (and its workers) now, by PID.
    local pid=${PID_OF[hopcache+policy]} p
    local -a kill_list=("$pid") keep=()
    # shellcheck disable=SC2207
    kill_list+=($(descendants "$pid"))
    stop_pids "${kill_list[@]}"
    for p in "${STARTED[@]}"; do [[ $p != "$pid" ]] && keep+=("$p"); done
    STARTED=("${keep[@]}")
    log "(f) hopcache (policy) stopped"
    sleep 1
}

# ---------------------------------------------------------- TLS scenario --
# (g), hopcache only (issue 5): the HTTPS proxy port ([tls] listen) of the
# running hopcache, against its plain port, each pair timed back to back:
#   g1p / g1t  the (a) request over keep-alive: plain port / TLS port
#   g2p / g2t  "Connection: close" on every request (like (b)): a new TCP
#              connection / a new TLS connection per request. wrk keeps its
#              TLS session across reconnects and offers it (TLS 1.3 PSK), so
#              g2t measures mostly resumed handshakes.
#   g3t        the same as g2t against a second hopcache (same INI, own
#              ports) started with OPENSSL_CONF setting NumTickets = 0: it
#              issues no session tickets, so every handshake is a full one
#              (ECDHE + an ECDSA P-256 signature).
# Before timing: a curl through each TLS port must get the full 200, or (g)
# fails (non-zero exit); openssl s_client records what is negotiated and
# whether a reconnect resumes. The second instance is stopped by PID after.
declare -a TLS_LINES=()
TLS_FAILED=""

tls_fail() {
    TLS_FAILED=$*
    log "error: (g) $*"
    TLS_LINES+=("FAIL: $*")
}

rps_of() { printf '%.0f' "${RATE[$1]:-0}"; }   # rps_of "scenario:server"

# CPU time (user + system, clock ticks) of a hopcache's workers so far.
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
worker_ticks() {  # worker_ticks SERVER
    local k t=0 v
    for k in $(descendants "${PID_OF[$1]}"); do
        v=$(awk '{ print $14 + $15 }' "/proc/$k/stat" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
declare -A CPU_US=()
cpu_of() { local v=${CPU_US[$1]:-n/a}; [[ $v == n/a ]] && echo "n/a" || echo "$v us"; }   # "scenario:server" -> worker CPU per completed request, microseconds

tls_ratio() {  # tls_ratio KEY KEY_PLAIN ("scenario:server") -> rate / plain rate
    local t=${RATE[$1]:-} p=${RATE[$2]:-}
    if [[ -z $p || -z $t ]]; then echo "n/a"; return; fi
    awk -v t="$t" -v p="$p" 'BEGIN { if (p > 0) printf "%.2f", t / p; else print "n/a" }'
}

# One request through the TLS port with curl: prints "CODE SIZE" (or curl's error).
tls_curl() {  # tls_curl TLSPORT
    curl -sS --max-time 10 --proxy "https://127.0.0.1:$1" --proxy-insecure -o /dev/null \
        -w '%{http_code} %{size_download}' "http://127.0.0.1:$ORIGIN_PORT/1k" 2>&1 || true
}

# What a TLS connection to the port negotiates (openssl s_client: the same
# library and defaults as wrk's client), and whether a second connection
# offering the first one's session resumes it. Prints one line:
#   "TLSv1.3, TLS_AES_256_GCM_SHA384, key exchange X25519, server key EC 256 bit, signature ECDSA; reconnect: Reused"
tls_probe() {  # tls_probe TLSPORT SESSFILE
    local port=$1 sess=$2 req out proto cipher kx key sig again
    req="GET http://127.0.0.1:$ORIGIN_PORT/1k HTTP/1.1"$'\r\n'"Host: 127.0.0.1:$ORIGIN_PORT"$'\r\n'"Connection: close"$'\r\n\r\n'
    rm -f "$sess"
    # -ign_eof: read until the server closes (after the response), so the
    # TLS 1.3 session tickets sent after the handshake are in the session.
    out=$(printf '%s' "$req" | timeout 10 openssl s_client -ign_eof -connect "127.0.0.1:$port" \
          -sess_out "$sess" 2>&1 || true)
    proto=$(sed -n 's/^\(New\|Reused\), \([^,]*\), Cipher is .*/\2/p' <<<"$out" | head -n 1)
    cipher=$(sed -n 's/^\(New\|Reused\), [^,]*, Cipher is //p' <<<"$out" | head -n 1)
    kx=$(sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' <<<"$out" | head -n 1)
    key=$(sed -n 's/^Server public key is //p' <<<"$out" | head -n 1)
    sig=$(sed -n 's/^Peer signature type: //p' <<<"$out" | head -n 1)
    # TLS 1.3: s_client saves a session only when a ticket arrives; no
    # ticket means there is nothing a client could resume.
    again="New (no session ticket issued)"
    if [[ -s $sess ]]; then
        again=$(printf '%s' "$req" | timeout 10 openssl s_client -ign_eof -connect "127.0.0.1:$port" \
                -sess_in "$sess" 2>&1 | sed -n 's/^\(New\|Reused\), .*/\1/p' | head -n 1 || true)
        again=${again:-"n/a (no handshake)"}
    fi
    printf '%s, %s, key exchange %s, server key %s, signature %s; reconnect: %s\n' \
        "${proto:-?}" "${cipher:-?}" "${kx:-?}" "${key:-?}" "${sig:-?}" "$again"
}

stop_instance() {  # stop_instance SERVER -- a hopcache started here, with its workers, by PID
    local pid=${PID_OF[$1]} p
    local -a kill_list=("$pid") keep=()
    # shellcheck disable=SC2207
    kill_list+=($(descendants "$pid"))
    stop_pids "${kill_list[@]}"
    for p in "${STARTED[@]}"; do [[ $p != "$pid" ]] && keep+=("$p"); done
    STARTED=("${keep[@]}")
}

run_tls() {
    if [[ " ${ACTIVE[*]} " != *" hopcache "* ]]; then
        log "(g) skipped: hopcache is not running"
        TLS_LINES+=("skipped: hopcache is not running (${NOTE_OF[hopcache]:-not in BENCH_SERVERS})")
        return 0
    fi
    if [[ $HOP_HAS_TLS != 1 || -z $HOP_TLS_PORT ]]; then
        tls_fail "hopcache has no HTTPS proxy port: ${HOP_TLS_NOTE:-unknown reason}"
        return 0
    fi
    local out probe probe_nt dir="$WORK/hopcache-notickets" ini nt_port

    # Check the HTTPS port before anything is timed.
    out=$(tls_curl "$HOP_TLS_PORT")
    if [[ $out != "200 1024" ]]; then
        tls_fail "curl --proxy https://127.0.0.1:$HOP_TLS_PORT --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k: got '$out', want '200 1024'"
        return 0
    fi
    log "(g) curl through the HTTPS proxy port: $out"
    probe=$(tls_probe "$HOP_TLS_PORT" "$WORK/hopcache-tls/session.pem")
    log "(g) hopcache TLS port: $probe"

    # The second instance: the same INI (own plain port, TLS port picked by
    # the kernel, own error log and cache dir), and an OpenSSL config that
    # only sets NumTickets = 0 (it replaces the system openssl.cnf for this
    # process; Debian's sets nothing for TLS).
    mkdir -p "$dir"
    cat > "$dir/openssl.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
NumTickets = 0
CNF
    ini="$dir/hopcache.ini"
    awk -v port="$HOP_NOTIX_PORT" -v dir="$dir" -v cachedir="$WORK/hopcache-cache-notickets" '
        /^\[/ { section = $0 }
        section == "[proxy]" && /^listen = / { print "listen = 127.0.0.1:" port; next }
        /^error = / { print "error = " dir "/error.log"; next }
        /^access = / { print "access = " dir "/access.log"; next }
        /^dir = / { print "dir = " cachedir; next }
        { print }
    ' "$WORK/hopcache/hopcache.ini" > "$ini"
    OPENSSL_CONF="$dir/openssl.cnf" "$HOPCACHE" -f -c "$ini" >"$dir/stdout.log" 2>&1 &
    PID_OF[hopcache+notickets]=$!
    STARTED+=("${PID_OF[hopcache+notickets]}")
    PORT_OF[hopcache+notickets]=$HOP_NOTIX_PORT
    if ! wait_port "$HOP_NOTIX_PORT" "${PID_OF[hopcache+notickets]}" "hopcache (no tickets)" \
        || ! nt_port=$(tls_port_from_log "${PID_OF[hopcache+notickets]}" "$dir"); then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        tls_fail "the second hopcache (OPENSSL_CONF with NumTickets = 0) did not start its HTTPS port (see its error log)"
        stop_instance hopcache+notickets
        return 0
    fi
    out=$(tls_curl "$nt_port")
    if [[ $out != "200 1024" ]]; then
        tls_fail "hopcache (no tickets): curl --proxy https://127.0.0.1:$nt_port --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k: got '$out', want '200 1024'"
        stop_instance hopcache+notickets
        return 0
    fi
    probe_nt=$(tls_probe "$nt_port" "$dir/session.pem")
    log "(g) hopcache (no tickets) TLS port $nt_port: $probe_nt"
    if [[ $probe_nt != *"reconnect: New"* ]]; then
        TLS_WARN[g3t:hopcache+notickets]="WARNING: reconnects are not full handshakes (s_client: ${probe_nt##*reconnect: })"
        log "(g) ${TLS_WARN[g3t:hopcache+notickets]}"
    fi
    measure_rss hopcache
    local rss_idle=${RSS_OF[hopcache]}

    local -a plan=(
        "g1p hopcache http://127.0.0.1:$HOP_PORT/"
        "g1t hopcache https://127.0.0.1:$HOP_TLS_PORT/"
        "g2p hopcache http://127.0.0.1:$HOP_PORT/"
        "g2t hopcache https://127.0.0.1:$HOP_TLS_PORT/"
        "g3t hopcache+notickets https://127.0.0.1:$nt_port/"
    )
    local step key s url t0 t1
    for step in "${plan[@]}"; do
        read -r key s url <<<"$step"
        t0=$(worker_ticks "$s")
        run_wrk "$key" "$s" "$url"
        t1=$(worker_ticks "$s")
        CPU_US[$key:$s]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${REQS[$key:$s]:-0}" \
            'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "n/a" }')
        RAN[$key:$s]=1
        measure_rss "$s"
        RSSROW[$key:$s]=${RSS_OF[$s]}
        if [[ ${ERRS[$key:$s]} != 0 ]]; then
            tls_fail "($key) $s: ${ERRS[$key:$s]} errors during the timed run (${ERRDETAIL[$key:$s]})"
        fi
        sleep 1
    done

    local resumed="wrk 4.1 keeps its TLS session across reconnects and offers it, and hopcache resumes it (s_client reconnect: Reused), so these are resumed handshakes (TLS 1.3: PSK + ECDHE, no certificate, no signature)"
    [[ $probe == *"reconnect: Reused" ]] \
        || resumed="s_client reconnect: ${probe##*reconnect: } -- so not necessarily resumed handshakes"
    TLS_LINES+=("HTTPS proxy port 127.0.0.1:$HOP_TLS_PORT; certificate: throwaway self-signed ECDSA P-256 (prime256v1); negotiated (openssl s_client): $probe")
    TLS_LINES+=("checked before timing: curl --proxy https://127.0.0.1:PORT --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k -> 200 1024 on both instances")
    TLS_LINES+=("(g1) keep-alive, TLS / plain port: $(tls_ratio g1t:hopcache g1p:hopcache) ($(rps_of g1t:hopcache) / $(rps_of g1p:hopcache) req/s; p99 ${P99[g1t:hopcache]} vs ${P99[g1p:hopcache]})")
    TLS_LINES+=("(g2) new connection per request, TLS (session resumed) / plain port: $(tls_ratio g2t:hopcache g2p:hopcache) ($(rps_of g2t:hopcache) / $(rps_of g2p:hopcache) req/s; p99 ${P99[g2t:hopcache]} vs ${P99[g2p:hopcache]}); $resumed")
    TLS_LINES+=("(g3) new connection per request, TLS full handshake / plain port: $(tls_ratio g3t:hopcache+notickets g2p:hopcache) ($(rps_of g3t:hopcache+notickets) / $(rps_of g2p:hopcache) req/s; p99 ${P99[g3t:hopcache+notickets]} vs ${P99[g2p:hopcache]}); second hopcache with OPENSSL_CONF NumTickets = 0, negotiated: $probe_nt")
    TLS_LINES+=("hopcache worker CPU (user + system, /proc) per completed request: g1 plain $(cpu_of g1p:hopcache), g1 TLS $(cpu_of g1t:hopcache), g2 plain $(cpu_of g2p:hopcache), g2 TLS resumed $(cpu_of g2t:hopcache), g3 TLS full handshake $(cpu_of g3t:hopcache+notickets) (less dependent on the machine's other load than the rates; wrk does the client side of every handshake on the same 2 cores)")
    TLS_LINES+=("hopcache worker RSS: $(fmt_mib "$rss_idle") MiB before (g), after each run: $(fmt_mib "${RSSROW[g1p:hopcache]}") / $(fmt_mib "${RSSROW[g1t:hopcache]}") / $(fmt_mib "${RSSROW[g2p:hopcache]}") / $(fmt_mib "${RSSROW[g2t:hopcache]}") MiB (g1 plain, g1 TLS, g2 plain, g2 TLS); no-tickets instance after (g3): $(fmt_mib "${RSSROW[g3t:hopcache+notickets]}") MiB (${RSS_DETAIL[hopcache+notickets]})")

    stop_instance hopcache+notickets
    log "(g) hopcache (no tickets) stopped"
    sleep 1
}
declare -A TLS_WARN=()

uniq_sc=""
for sc in $SCENARIOS; do
    case $sc in a|b|c|d|e|f|g) ;; *) die "unknown scenario '$sc' in BENCH_SCENARIOS" ;; esac
    [[ " $uniq_sc " == *" $sc "* ]] || uniq_sc+="${uniq_sc:+ }$sc"
done
SCENARIOS=$uniq_sc   # each scenario once (results are keyed by scenario)
for sc in $SCENARIOS; do
    if [[ $sc == f ]]; then
        run_policy
        continue
    fi
    if [[ $sc == g ]]; then
        run_tls
        continue
    fi
    for s in "${ACTIVE[@]}"; do
        if [[ $sc == c ]]; then
            run_connect "$s"
        elif [[ $sc == d || $sc == e ]]; then
            warm_cache "$sc" "$s"
            c0=$(cache_counters "$sc" "$s")
            run_wrk "$sc" "$s"
            c1=$(cache_counters "$sc" "$s")
            if [[ -n $c0 && -n $c1 ]]; then
                read -r h0 m0 <<<"$c0"
                read -r h1 m1 <<<"$c1"
                [[ $s == hopcache ]] && h1=$((h1 - 1))   # the flush request itself
                RUN_HITS[$sc:$s]="$((h1 - h0)) hits, $((m1 - m0)) misses (proxy counters) for ${REQS[$sc:$s]:-?} completed wrk requests"
                log "($sc) $s: ${RUN_HITS[$sc:$s]}"
            fi
        else
            run_wrk "$sc" "$s"
        fi
        RAN[$sc:$s]=1
        measure_rss "$s"
        RSSROW[$sc:$s]=${RSS_OF[$s]}
        sleep 1   # let the previous run's connections drain
    done
done

# ---------------------------------------------------------------- report --

ratio() {  # ratio SCENARIO SERVER
    local d=${RATE[$1:direct]:-} v=${RATE[$1:$2]:-}
    if [[ -z $d || -z $v ]]; then echo "n/a"; return; fi
    awk -v d="$d" -v v="$v" 'BEGIN { if (d > 0) printf "%.2f", v / d; else print "n/a" }'
}

declare -A TITLE=(
    [a]="(a) 1 KiB no-store, keep-alive"
    [b]="(b) 1 KiB no-store, Connection: close"
    [c]="(c) CONNECT + TLS, ${BIG_MIB} MiB x ${CONNECT_PAR}"
    [d]="(d) 1 KiB cache hit, keep-alive"
    [e]="(e) 64 KiB cache hit, keep-alive"
    [f]="(f) 1 KiB no-store, keep-alive, policy"
    [g1p]="(g1) 1 KiB keep-alive, plain port"
    [g1t]="(g1) 1 KiB keep-alive, TLS port"
    [g2p]="(g2) 1 KiB conn: close, plain port"
    [g2t]="(g2) 1 KiB conn: close, TLS (resumed)"
    [g3t]="(g3) 1 KiB conn: close, TLS (full hs)"
)
declare -A TARGET=([a]=0.40 [b]=0.50 [c]=0.80 [d]=0.80 [e]=0.70)

declare -a ROWS=()   # tab-separated: scenario server rate p99 ratio errors rss
for sc in $SCENARIOS; do
    if [[ $sc == f ]]; then
        # hopcache only; the ratio column is policy on / policy off
        for s in hopcache hopcache+policy; do
            [[ -n ${RAN[f:$s]:-} ]] || continue
            errs=${ERRS[f:$s]}
            ((errs)) && errs+=" (${ERRDETAIL[f:$s]})"
            r="1.00 of off"
            [[ $s == hopcache+policy ]] && r="$(policy_ratio) of off"
            ROWS+=("${TITLE[f]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[f:$s]}") req/s"$'\t'"${P99[f:$s]}"$'\t'"$r"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[f:$s]}")")
        done
        continue
    fi
    if [[ $sc == g ]]; then
        # hopcache only; the ratio column is TLS port / plain port (same
        # workload, same run; g3 against the g2 plain-port row)
        for ks in g1p:hopcache g1t:hopcache g2p:hopcache g2t:hopcache g3t:hopcache+notickets; do
            [[ -n ${RAN[$ks]:-} ]] || continue
            key=${ks%%:*} s=${ks#*:}
            case $key in
                g1p|g2p) r="1.00 vs plain" ;;
                g1t) r="$(tls_ratio g1t:hopcache g1p:hopcache) vs plain" ;;
                g2t) r="$(tls_ratio g2t:hopcache g2p:hopcache) vs plain" ;;
                g3t) r="$(tls_ratio g3t:hopcache+notickets g2p:hopcache) vs plain" ;;
            esac
            errs=${ERRS[$ks]}
            ((errs)) && errs+=" (${ERRDETAIL[$ks]})"
            [[ -n ${TLS_WARN[$ks]:-} ]] && errs+="; ${TLS_WARN[$ks]}"
            ROWS+=("${TITLE[$key]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[$ks]}") req/s"$'\t'"${P99[$ks]}"$'\t'"$r"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[$ks]}")")
        done
        continue
    fi
    for s in "${ACTIVE[@]}"; do
        [[ -n ${RAN[$sc:$s]:-} ]] || continue
        if [[ $sc == c ]]; then
            rate="$(printf '%.1f' "${RATE[$sc:$s]}") MB/s"
        else
            rate="$(printf '%.0f' "${RATE[$sc:$s]}") req/s"
        fi
        errs=${ERRS[$sc:$s]}
        if [[ -n ${BENIGN[$sc:$s]:-} ]]; then
            errs="0 (+${BENIGN[$sc:$s]} read = EOF after complete response, see note)"
        elif ((errs)); then
            errs+=" (${ERRDETAIL[$sc:$s]})"
        fi
        [[ -n ${HIT_WARN[$sc:$s]:-} ]] && errs+="; ${HIT_WARN[$sc:$s]}"
        ROWS+=("${TITLE[$sc]}"$'\t'"$s"$'\t'"$rate"$'\t'"${P99[$sc:$s]}"$'\t'"$(ratio "$sc" "$s")"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[$sc:$s]}")")
    done
done

# Verdict against the targets in issue 2 (a-c) and issue 3 (d, e), hopcache only.
declare -a VERDICT=()
if [[ " ${ACTIVE[*]} " == *" hopcache "* && " ${ACTIVE[*]} " == *" direct "* ]]; then
    for sc in $SCENARIOS; do
        [[ $sc == f || $sc == g ]] && continue   # no target; reported under "Policy" / "TLS"
        r=$(ratio "$sc" hopcache)
        ok=PASS; why="ratio $r (target >= ${TARGET[$sc]})"
        if [[ $r == n/a ]] || awk -v r="$r" -v t="${TARGET[$sc]}" 'BEGIN { exit !(r < t) }'; then ok=FAIL; fi
        for other in squid tinyproxy; do
            [[ -n ${RATE[$sc:$other]:-} ]] || continue
            if awk -v h="${RATE[$sc:hopcache]}" -v o="${RATE[$sc:$other]}" 'BEGIN { exit !(h <= o) }'; then
                ok=FAIL; why+=", not ahead of $other"
            else
                why+=", ahead of $other"
            fi
        done
        if [[ ${ERRS[$sc:hopcache]} != 0 ]]; then ok=FAIL; why+=", ${ERRS[$sc:hopcache]} errors"; else why+=", no errors"; fi
        if [[ $sc == d || $sc == e ]]; then
            if [[ ${HIT_OK[$sc:hopcache]:-0} == 1 ]]; then why+=", hit verified"; else ok=FAIL; why+=", NO cache hit after warm-up"; fi
            [[ -n ${RUN_HITS[$sc:hopcache]:-} ]] && why+=" (run: ${RUN_HITS[$sc:hopcache]})"
        fi
        VERDICT+=("$ok ${TITLE[$sc]}: $why")
    done
    m=${RSS_MAX[hopcache]:-0}
    if ((m <= 16 * 1024)); then ok=PASS; else ok=FAIL; fi
    VERDICT+=("$ok RSS: max hopcache worker $(fmt_mib "$m") MiB after load (target <= 16 MiB)")
fi

declare -a CACHE_LINES=()
cache_lines() {
    local sc s l
    CACHE_LINES=()
    for sc in $SCENARIOS; do
        [[ $sc == d || $sc == e ]] || continue
        for s in "${ACTIVE[@]}"; do
            [[ $s == direct || -z ${RAN[$sc:$s]:-} ]] && continue
            if [[ ${HIT_OK[$sc:$s]:-0} == 1 ]]; then l="hit verified"; else l="NO HIT"; fi
            l="($sc) $s: $l; ${HIT_INFO[$sc:$s]:-}"
            [[ -n ${RUN_HITS[$sc:$s]:-} ]] && l+="; run: ${RUN_HITS[$sc:$s]}"
            CACHE_LINES+=("$l")
        done
    done
}

print_text() {
    local row
    printf '\n%-40s %-10s %14s %10s %9s %8s  %s\n' "scenario" "server" "rate" "p99" "vs direct" "RSS MiB" "errors"
    printf '%s\n' "$(printf '%.0s-' {1..110})"
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r a b c d e f g <<<"$row"
        printf '%-40s %-10s %14s %10s %9s %8s  %s\n' "$a" "$b" "$c" "$d" "$e" "$g" "$f"
    done
    printf '\nload average at start: %s, at end: %s\n' "$LOAD_START" "$LOAD_END"
    printf '\nRSS after the load (worker process, max over scenarios):\n'
    for s in "${ACTIVE[@]}"; do
        printf '  %-10s %6s MiB  (%s)\n' "$s" "$(fmt_mib "${RSS_MAX[$s]:-0}")" "${RSS_DETAIL[$s]:-}"
    done
    for s in direct hopcache squid tinyproxy; do
        [[ -n ${NOTE_OF[$s]:-} ]] && printf '  note: %s: %s\n' "$s" "${NOTE_OF[$s]}"
    done
    cache_lines
    if ((${#CACHE_LINES[@]})); then
        printf '\nCache hits (warm-up check before the run; counters during it):\n'
        printf '  %s\n' "${CACHE_LINES[@]}"
    fi
    if ((${#POLICY_LINES[@]})); then
        printf '\nPolicy (f, issue 4): hopcache with basic auth + %s-entry domain list vs. policy off:\n' "$POLICY_DOMAINS"
        printf '  %s\n' "${POLICY_LINES[@]}"
    fi
    if ((${#TLS_LINES[@]})); then
        printf '\nHTTPS proxy port (g, issue 5): hopcache, TLS port vs. plain port; the (g) rows'"'"' ratio column is rate / plain-port rate:\n'
        printf '  %s\n' "${TLS_LINES[@]}"
    fi
    if ((${#VERDICT[@]})); then
        printf '\nTargets (issues 2 and 3):\n'
        printf '  %s\n' "${VERDICT[@]}"
    fi
    printf '\n'
}

version_of() {
    case $1 in
        nginx) nginx -v 2>&1 | sed 's/^nginx version: //' ;;
        squid) squid -v 2>/dev/null | head -n 1 | sed 's/Squid Cache: Version /squid\//' ;;
        tinyproxy) tinyproxy -v 2>/dev/null | head -n 1 | tr ' ' '/' ;;
        wrk) wrk -v 2>&1 | head -n 1 | awk '{ print "wrk/" $2 }' ;;
        curl) curl --version | head -n 1 | awk '{ print "curl/" $2 }' ;;
    esac
}

write_markdown() {
    local row rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    {
        printf '# hopcache bench results\n\n'
        printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        printf -- '- host: %s CPUs, %s, kernel %s\n' "$(nproc)" "$(uname -m)" "$(uname -r)"
        printf -- '- hopcache: %s (tree at %s)\n' "$HOPCACHE" "$rev"
        printf -- '- tools: %s, %s, %s, %s, %s\n' "$(version_of nginx)" "$(version_of squid)" \
            "$(version_of tinyproxy)" "$(version_of wrk)" "$(version_of curl)"
        printf -- '- wrk: -t%s -c%s -d%s --timeout %s; (c): %s rounds x %s parallel tunnels, %s MiB each\n' \
            "$THREADS" "$CONNS" "$DURATION" "$WRK_TIMEOUT" "$CONNECT_ROUNDS" "$CONNECT_PAR" "$BIG_MIB"
        printf -- '- every server runs one worker; proxy access logs: %s\n' \
            "$([[ $ACCESS_LOG == 1 ]] && echo on || echo off)"
        printf -- '- load average (1/5/15 min) at start: %s, at end: %s (other work on the machine skews every row)\n\n' \
            "$LOAD_START" "$LOAD_END"
        printf '| scenario | server | rate | p99 | vs direct | errors | RSS after (MiB) |\n'
        printf '|---|---|---:|---:|---:|---|---:|\n'
        for row in "${ROWS[@]}"; do
            IFS=$'\t' read -r a b c d e f g <<<"$row"
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
        done
        printf '\n## RSS after the load\n\n| server | max worker RSS (MiB) | detail |\n|---|---:|---|\n'
        for s in "${ACTIVE[@]}"; do
            printf '| %s | %s | %s |\n' "$s" "$(fmt_mib "${RSS_MAX[$s]:-0}")" "${RSS_DETAIL[$s]:-}"
        done
        local any=0
        for s in direct hopcache squid tinyproxy; do
            if [[ -n ${NOTE_OF[$s]:-} ]]; then
                ((any)) || printf '\n## Notes\n\n'
                any=1
                printf -- '- %s: %s\n' "$s" "${NOTE_OF[$s]}"
            fi
        done
        cache_lines
        if ((${#CACHE_LINES[@]})); then
            printf '\n## Cache hits\n\nWarm-up check before each timed run; hit/miss counters of the proxy during it.\n\n'
            printf -- '- %s\n' "${CACHE_LINES[@]}"
        fi
        if ((${#POLICY_LINES[@]})); then
            printf '\n## Policy (f, issue 4)\n\nhopcache with `[auth] scheme = basic` and a %s-entry `domain_file` rule loaded, vs. the same run with policy off; the (f) rows show on/off in the ratio column.\n\n' "$POLICY_DOMAINS"
            printf -- '- %s\n' "${POLICY_LINES[@]}"
        fi
        if ((${#TLS_LINES[@]})); then
            printf '\n## HTTPS proxy port (g, issue 5)\n\nhopcache only: the same workload on its TLS port and on its plain port, back to back in the same run; in the (g) rows the ratio column is "vs plain": rate / rate of the plain-port row of the same pair (g1: keep-alive; g2 and g3: a new connection per request, both against the (g2) plain-port row). (g3) is a second hopcache that issues no session tickets, so every handshake is a full one.\n\n'
            printf -- '- %s\n' "${TLS_LINES[@]}"
        fi
        if ((${#VERDICT[@]})); then
            printf '\n## Targets (issues 2 and 3)\n\n'
            printf -- '- %s\n' "${VERDICT[@]}"
        fi
        printf '\n"direct" is nginx itself (the limit); "vs direct" is rate / direct rate in the same run ((f) rows: policy on / off; (g) rows: TLS port / plain port of hopcache).\n'
        printf 'MB/s = 10^6 bytes per second of payload, summed over the parallel tunnels.\n'
    } > "$OUT"
}

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
print_text
write_markdown
log "wrote $OUT"
fails=""
[[ -n $POLICY_FAILED ]] && fails+="scenario (f) FAILED: $POLICY_FAILED; "
[[ -n $TLS_FAILED ]] && fails+="scenario (g) FAILED: $TLS_FAILED; "
if [[ -n $fails ]]; then
    die "${fails%; }"
fi

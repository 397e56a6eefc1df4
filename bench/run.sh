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
#   (m) idle memory: BENCH_IDLE_CONNS (5000) client connections, one
#       complete keep-alive request on each (the 1 KiB no-store object),
#       then all held open and idle (bench/idle_conns.py); the server's
#       memory (Pss from /proc/PID/smaps_rollup, summed over the server's
#       processes: master + workers) before and with them open gives
#       KiB per idle connection
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
#   (i) hopcache only, corporate identity (issue 12; bench/identity.sh): (a)
#       with no auth vs. (n1) Negotiate/Kerberos once per connection, (n2) a
#       fresh Negotiate token per request, (l1) Basic + cached LDAP groups
#       in a rule; a real MIT KDC and slapd (bench/identity_servers.py)
#   (h) page load over the HTTPS proxy port (issue 13; bench/h2.sh): 100
#       small no-store objects kept in flight over TLS, (h2) HTTP/2, one
#       connection, 100 streams (h2load) vs. (h1) HTTP/1.1, 6 keep-alive
#       connections (wrk + page.lua), to hopcache's [tls] port and to
#       nghttpx --http2-proxy (TLS frontend, one worker) as the h2 peer
# and prints a table (also written as Markdown to bench/results-latest.md). See bench/README.md.
#
# Only loopback traffic. Every load run is bounded in time (wrk -d plus a
# `timeout` guard; curl --max-time) and in count (fixed connections, fixed
# number of curl downloads). Every process started here is stopped by PID on
# exit, and the temp dir is removed (BENCH_KEEP_TMP=1 keeps it).
#
# Environment (all optional):
#   HOPCACHE                path to the hopcache binary (default: src/hopcache)
#   HOPCACHE_BASELINE       path to a second hopcache binary (unset: none); when
#                           set, it runs too, as server "hopcache-base" (same INI,
#                           own port), in every scenario -- before/after in one run
#   BENCH_DURATION          wrk duration per run, e.g. 10s, 30s, 1m (default 10s)
#   BENCH_CONNS             wrk connections (default 50)
#   BENCH_THREADS           wrk threads (default 1, see below)
#   BENCH_WRK_TIMEOUT       wrk per-request timeout (default 2s, wrk's default)
#   BENCH_CONNECT_PARALLEL  parallel tunnels in (c) (default 4)
#   BENCH_CONNECT_ROUNDS    rounds of parallel downloads in (c) (default 3)
#   BENCH_BIG_MIB           size of the (c) object in MiB (default 64)
#   BENCH_SERVERS           subset of "direct hopcache hopcache-base squid tinyproxy"
#                           (hopcache-base: only with HOPCACHE_BASELINE, added
#                           after hopcache by default when that is set)
#   BENCH_SCENARIOS         subset of "a b c d e m f g h i" (default: "a b c d e m")
#   HOPCACHE_LDAP           (i): the binary for (l1) (default: HOPCACHE); when it
#                           differs, (l1) is compared with a policy-off
#                           instance of that binary
#   BENCH_FIXTURES          (i): colon-separated directories holding
#                           krb5_kdc.py and slapd_fixture.py (searched before
#                           tests/integration)
#   BENCH_PYTHON            (i): a python3 with python3-gssapi and pytest
#                           (default: python3, else /usr/bin/python3)
#   BENCH_ID_CALIBRATE      (i): seconds of the n2 calibration run (default 2)
#   BENCH_ID_CALIB_TOKENS   (i): tokens made for it (default 30000)
#   BENCH_ID_MAX_TOKENS     (i): at most this many n2 tokens (default 400000)
#   BENCH_H2_OBJECTS        (h): objects on the page (default 100)
#   BENCH_H2_STREAMS        (h): concurrent h2 streams (default: the objects)
#   BENCH_H2_H1CONNS        (h): HTTP/1.1 keep-alive connections (default 6)
#   BENCH_IDLE_CONNS        idle client connections in (m) (default 5000)
#   BENCH_IDLE_INFLIGHT     (m): connections opened / awaiting their response
#                           at a time (default 16)
#   BENCH_IDLE_SETTLE       (m): seconds between the last response and the
#                           measurement (default 2)
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
HOPCACHE_BASELINE=${HOPCACHE_BASELINE:-}
if [[ -n $HOPCACHE_BASELINE ]]; then
    SERVERS=${BENCH_SERVERS:-direct hopcache hopcache-base squid tinyproxy}
else
    SERVERS=${BENCH_SERVERS:-direct hopcache squid tinyproxy}
fi
SCENARIOS=${BENCH_SCENARIOS:-a b c d e m}
IDLE_CONNS=${BENCH_IDLE_CONNS:-5000}
IDLE_INFLIGHT=${BENCH_IDLE_INFLIGHT:-16}
IDLE_SETTLE=${BENCH_IDLE_SETTLE:-2}
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
# shellcheck source=bench/identity.sh
. "$(dirname "${BASH_SOURCE[0]}")/identity.sh"   # scenario (i): functions only
# shellcheck source=bench/h2.sh
. "$(dirname "${BASH_SOURCE[0]}")/h2.sh"         # scenario (h): functions only

for tool in nginx wrk curl openssl python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (Debian: apt-get install nginx-light wrk curl openssl python3)"
done

# wrk duration -> seconds, for the outer `timeout` guard.
DUR_S=$(duration_secs "$DURATION")
[[ $DUR_S =~ ^[0-9]+$ ]] || die "BENCH_DURATION '$DURATION' not understood (use e.g. 10s, 1m)"
[[ $CONNS =~ ^[0-9]+$ && $CONNECT_PAR =~ ^[0-9]+$ && $CONNECT_ROUNDS =~ ^[0-9]+$ && $BIG_MIB =~ ^[0-9]+$ && $POLICY_DOMAINS =~ ^[0-9]+$ ]] \
    || die "BENCH_CONNS / BENCH_CONNECT_* / BENCH_BIG_MIB / BENCH_POLICY_DOMAINS must be integers"
[[ $IDLE_CONNS =~ ^[1-9][0-9]*$ && $IDLE_INFLIGHT =~ ^[1-9][0-9]*$ && $IDLE_SETTLE =~ ^[0-9]+$ ]] \
    || die "BENCH_IDLE_CONNS / BENCH_IDLE_INFLIGHT must be positive integers, BENCH_IDLE_SETTLE an integer"

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
read -r ORIGIN_PORT TLS_PORT HOP_PORT SQUID_PORT TINY_PORT HOP_POLICY_PORT HOP_NOTIX_PORT \
    BASE_PORT BASE_POLICY_PORT BASE_NOTIX_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)
log "ports: origin=$ORIGIN_PORT tls=$TLS_PORT hopcache=$HOP_PORT squid=$SQUID_PORT tinyproxy=$TINY_PORT$([[ -n $HOPCACHE_BASELINE ]] && echo " hopcache-base=$BASE_PORT")"

# (m) holds BENCH_IDLE_CONNS connections open at once: the client and every
# server (started below, they inherit the limit) need that many descriptors
# plus their own. Raise the soft limit towards the hard one if needed.
WANT_IDLE=0
[[ " $SCENARIOS " == *" m "* ]] && WANT_IDLE=1
IDLE_FD_NOTE=""
if [[ $WANT_IDLE == 1 ]]; then
    fd_need=$((IDLE_CONNS + IDLE_INFLIGHT + 1024))
    fd_soft=$(ulimit -Sn) fd_hard=$(ulimit -Hn)
    if [[ $fd_soft != unlimited ]] && ((fd_soft < fd_need)); then
        fd_want=$fd_need
        [[ $fd_hard != unlimited ]] && ((fd_hard < fd_want)) && fd_want=$fd_hard
        ulimit -Sn "$fd_want" 2>/dev/null || true
        log "RLIMIT_NOFILE: soft limit $fd_soft -> $(ulimit -Sn) (hard $fd_hard) for (m)"
    fi
    fd_soft=$(ulimit -Sn)
    if [[ $fd_soft != unlimited ]] && ((fd_soft < IDLE_CONNS + 64)); then
        IDLE_FD_NOTE="RLIMIT_NOFILE is only $fd_soft (hard $fd_hard): too low for $IDLE_CONNS connections; lower BENCH_IDLE_CONNS or raise the hard limit"
        log "warning: $IDLE_FD_NOTE"
    fi
fi

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
[[ " $SCENARIOS " == *" g "* || " $SCENARIOS " == *" h "* ]] && WANT_TLS=1   # (h) too
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
PORT_OF[hopcache-base]=$BASE_PORT
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
# Two instances at most: "hopcache" ($HOPCACHE) and, with HOPCACHE_BASELINE
# set, "hopcache-base" (that binary, the same INI on its own port, own logs
# and cache dir). Everything a scenario needs of an instance is in these
# maps, keyed by the instance's name.
declare -A BIN_OF=([hopcache]=$HOPCACHE [hopcache-base]=$HOPCACHE_BASELINE)
declare -A INI_OF=() HAS_TLS_OF=() TLS_PORT_OF=() TLS_NOTE_OF=()
declare -A POLICY_PORT_OF=([hopcache]=$HOP_POLICY_PORT [hopcache-base]=$BASE_POLICY_PORT)
declare -A NOTIX_PORT_OF=([hopcache]=$HOP_NOTIX_PORT [hopcache-base]=$BASE_NOTIX_PORT)
is_hopcache() { [[ $1 == hopcache || $1 == hopcache-base ]]; }
line_tag() { [[ $1 == hopcache ]] || printf '[%s] ' "$1"; }   # prefix of report lines about an instance

start_hopcache() {  # start_hopcache NAME (hopcache | hopcache-base)
    local h=$1 bin=${BIN_OF[$1]} dir="$WORK/$1"
    mkdir -p "$dir"
    INI_OF[$h]="$dir/hopcache.ini"
    HAS_TLS_OF[$h]=0 TLS_PORT_OF[$h]="" TLS_NOTE_OF[$h]=""
    if [[ -z $bin ]]; then
        NOTE_OF[$h]="skipped: HOPCACHE_BASELINE is not set"
        return 1
    fi
    if [[ ! -x $bin ]]; then
        if [[ $h == hopcache ]]; then
            NOTE_OF[$h]="skipped: $bin not found (build it first, or set HOPCACHE)"
        else
            NOTE_OF[$h]="skipped: HOPCACHE_BASELINE $bin not found"
        fi
        return 1
    fi
    write_hopcache_ini() {  # write_hopcache_ini NAME WITH_CACHE(0|1) WITH_TLS(0|1) WITH_LIMITS(0|1)
        {
            printf '[proxy]\nlisten = 127.0.0.1:%s\nworkers = 1\nconnect_ports = 1-65535\n' "${PORT_OF[$1]}"
            # the origin is on loopback, which the policy refuses by default
            printf '[acl]\nprivate_destinations = allow\n'
            printf '[log]\nerror = %s\n' "$WORK/$1/error.log"
            if [[ $ACCESS_LOG == 1 ]]; then printf 'access = %s\n' "$WORK/$1/access.log"; fi
            if [[ $2 == 1 ]]; then
                # The LMDB store lives in the temp dir too (removed on exit).
                printf '[cache]\nenabled = yes\ndir = %s\nsize = 256M\nmax_object_size = 16M\n' \
                    "$WORK/$1-cache"
            fi
            if [[ $3 == 1 ]]; then
                # (g): the HTTPS proxy port, on a port the kernel picks
                # (read back from the master's "listening for TLS on" line).
                printf '[tls]\nlisten = 127.0.0.1:0\ncertificate = %s\nprivate_key = %s\n' \
                    "$WORK/hopcache-tls/cert.pem" "$WORK/hopcache-tls/key.pem"
            fi
            if [[ $4 == 1 ]]; then
                # (m): room for BENCH_IDLE_CONNS clients (default limit 4096),
                # all from 127.0.0.1 (the per-client limit, 256, is off)
                printf '[limits]\nmax_connections = %s\nmax_connections_per_client = 0\n' \
                    "$((IDLE_CONNS + 1024))"
            fi
        } > "${INI_OF[$1]}"
    }
    # A hopcache without the cache rejects the [cache] section: run it
    # without (the cache-hit scenarios then show it serving misses); one
    # without the HTTPS port rejects [tls]: run it without ((g) then fails).
    # The first combination `hopcache -t` accepts wins ([limits] for (m)
    # is dropped last).
    local combo with_cache with_tls with_limits ok=0
    local -a limit_opts=(0)
    [[ $WANT_IDLE == 1 ]] && limit_opts=(1 0)
    : >"$dir/configtest.log"
    for with_limits in "${limit_opts[@]}"; do
        for combo in "1 $WANT_TLS" "0 $WANT_TLS" "1 0" "0 0"; do
            read -r with_cache with_tls <<<"$combo"
            write_hopcache_ini "$h" "$with_cache" "$with_tls" "$with_limits"
            if "$bin" -t -c "${INI_OF[$h]}" >>"$dir/configtest.log" 2>&1; then
                ok=1
                break 2
            fi
        done
    done
    if [[ $ok == 0 ]]; then
        with_cache=1 with_tls=$WANT_TLS with_limits=$WANT_IDLE
        write_hopcache_ini "$h" 1 "$WANT_TLS" "$WANT_IDLE"   # let the start-up below fail with its reason
    fi
    HAS_TLS_OF[$h]=$with_tls
    if [[ $with_cache == 0 ]]; then
        NOTE_OF[$h]="config with [cache] rejected, running without the cache: $(head -n 1 "$dir/configtest.log")"
        log "$h: ${NOTE_OF[$h]}"
    fi
    if [[ $WANT_IDLE == 1 && $with_limits == 0 ]]; then
        NOTE_OF[$h]="${NOTE_OF[$h]:+${NOTE_OF[$h]}; }config with [limits] max_connections rejected, (m) runs with the default limit: $(head -n 1 "$dir/configtest.log")"
        log "$h: ${NOTE_OF[$h]}"
    fi
    if [[ $WANT_TLS == 1 && $with_tls == 0 ]]; then
        TLS_NOTE_OF[$h]="config with [tls] rejected, running without the HTTPS port: $(head -n 1 "$dir/configtest.log")"
        log "$h: ${TLS_NOTE_OF[$h]}"
    fi
    "$bin" -f -c "${INI_OF[$h]}" >"$dir/stdout.log" 2>&1 &
    PID_OF[$h]=$!
    STARTED+=("${PID_OF[$h]}")
    if ! wait_port "${PORT_OF[$h]}" "${PID_OF[$h]}" "$h"; then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        NOTE_OF[$h]="skipped: $h did not start (see its error log)"
        return 1
    fi
    if [[ ${HAS_TLS_OF[$h]} == 1 ]]; then
        if TLS_PORT_OF[$h]=$(tls_port_from_log "${PID_OF[$h]}" "$dir"); then
            log "$h HTTPS proxy port: 127.0.0.1:${TLS_PORT_OF[$h]}"
        else
            TLS_NOTE_OF[$h]="no 'listening for TLS on 127.0.0.1:PORT' in $h's log within 15 s"
            log "$h: ${TLS_NOTE_OF[$h]}"
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
        hopcache|hopcache-base|squid|tinyproxy)
            if [[ $s == hopcache-base ]] && [[ -z $HOPCACHE_BASELINE ]]; then
                die "hopcache-base in BENCH_SERVERS needs HOPCACHE_BASELINE (the baseline binary)"
            fi
            up=0
            if is_hopcache "$s"; then
                start_hopcache "$s" && up=1
            else
                "start_$s" && up=1
            fi
            if [[ $up == 1 ]]; then
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
# With a second argument "nomax" (used by (m), whose thousands of held
# connections are not "the load"), RSS_MAX and RSS_DETAIL are left alone.
declare -A RSS_OF=() RSS_MAX=() RSS_DETAIL=()
measure_rss() {
    local s=$1 pid=${PID_OF[$1]} k r max=0 detail
    local -a kids
    # shellcheck disable=SC2207
    kids=($(descendants "$pid"))
    case $s in
        hopcache|hopcache+*|hopcache-*|direct)
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
    [[ ${2:-} == nomax ]] && return 0
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
    local script=${WRK_SCRIPT:-$BENCH_DIR/absolute.lua}   # (i): identity.lua
    log "($sc) $s: wrk -t$THREADS -c$CONNS -d$DURATION $url GET $target$([[ $close == 1 ]] && echo ' + Connection: close')$([[ -n ${WRK_SCRIPT:-} ]] && echo " (${script##*/}, ${BENCH_ID_MODE:-})")"
    BENCH_TARGET=$target BENCH_HOST="127.0.0.1:$ORIGIN_PORT" BENCH_CLOSE=$close \
        BENCH_PROXY_AUTH=${PROXY_AUTH_OF[$s]:-} \
        timeout -k 5 $((DUR_S + 60)) \
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
            -s "$script" "$url" >"$raw" 2>&1 &
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
        hopcache|hopcache-base) [[ $cs =~ ^[Hh]opcache\;[[:space:]]*hit ]] && HIT_OK[$sc:$s]=1 ;;
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
        hopcache|hopcache-base)
            sleep 1.1
            curl -sS --max-time 5 -x "http://127.0.0.1:${PORT_OF[$s]}" -A hopcache-bench/flush -o /dev/null \
                "http://127.0.0.1:$ORIGIN_PORT${PATH_OF[$sc]}" 2>/dev/null || true
            sleep 0.1
            out=$(timeout 10 "${BIN_OF[$s]}" --cache-stats -c "${INI_OF[$s]}" 2>/dev/null || true)
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
POLICY_FAILS=0

policy_ratio() {  # policy_ratio INSTANCE (hopcache | hopcache-base)
    local off=${RATE[f:$1]:-} on=${RATE[f:$1+policy]:-}
    if [[ -z $off || -z $on ]]; then echo "n/a"; return; fi
    awk -v a="$off" -v b="$on" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "n/a" }'
}

policy_fail() {  # policy_fail INSTANCE MESSAGE...
    local h=$1
    shift
    POLICY_FAILED=$*
    [[ $h == hopcache ]] || POLICY_FAILED="$h: $*"
    POLICY_FAILS=$((POLICY_FAILS + 1))
    log "error: (f) $POLICY_FAILED"
    POLICY_LINES+=("$(line_tag "$h")FAIL: $*")
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

run_policy() {  # run_policy INSTANCE (hopcache | hopcache-base)
    local h=$1 tag
    tag=$(line_tag "$h")
    if [[ " ${ACTIVE[*]} " != *" $h "* ]]; then
        log "(f) skipped: $h is not running"
        POLICY_LINES+=("${tag}skipped: $h is not running (${NOTE_OF[$h]:-not in BENCH_SERVERS})")
        return 0
    fi
    local dir="$WORK/$h-policy" t0 t1 pw hash auth ini out code hp=$h+policy bin=${BIN_OF[$h]}
    local pport=${POLICY_PORT_OF[$h]} fails0=$POLICY_FAILS
    mkdir -p "$dir"

    # Credentials: one apr1 user (openssl, no apache2-utils needed).
    pw=$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 12)
    hash=$(openssl passwd -apr1 "$pw") || { policy_fail "$h" "openssl passwd -apr1 failed"; return 0; }
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
    log "(f) $h: domain list: $lines entries, $bytes bytes, written in $(elapsed "$t0" "$t1") s"

    # Same INI as the running hopcache (own port, error log and cache dir),
    # with [auth] and the rules added.
    ini="$dir/hopcache.ini"
    awk -v port="$pport" -v dir="$dir" -v cachedir="$WORK/$h-cache-policy" '
        /^\[/ { section = $0 }
        section == "[proxy]" && /^listen = / { print "listen = 127.0.0.1:" port; next }
        /^error = / { print "error = " dir "/error.log"; next }
        /^access = / { print "access = " dir "/access.log"; next }
        /^dir = / { print "dir = " cachedir; next }
        { print }
        /^private_destinations = / { print "default = allow"; print "rules = blocklist, office" }
    ' "${INI_OF[$h]}" > "$ini"
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
    if ! timeout 60 "$bin" -t -c "$ini" >"$dir/configtest.log" 2>&1; then
        policy_fail "$h" "hopcache -t rejects the policy INI: $(head -n 3 "$dir/configtest.log" | tr '\n' ' ')"
        return 0
    fi
    t1=$(now_s)
    t_test=$(elapsed "$t0" "$t1")
    # the same -t on the policy-off INI, for comparison
    t0=$(now_s)
    timeout 60 "$bin" -t -c "${INI_OF[$h]}" >/dev/null 2>&1 || true
    t1=$(now_s)
    local t_test_off
    t_test_off=$(elapsed "$t0" "$t1")
    log "(f) $h -t: ${t_test} s with the policy INI, ${t_test_off} s without"

    t0=$(now_s)
    "$bin" -f -c "$ini" >"$dir/stdout.log" 2>&1 &
    PID_OF[$hp]=$!
    STARTED+=("${PID_OF[$hp]}")
    PORT_OF[$hp]=$pport
    if ! wait_port "$pport" "${PID_OF[$hp]}" "$h (policy)"; then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        policy_fail "$h" "$h with the policy INI did not start (see its error log)"
        return 0
    fi
    t1=$(now_s)
    t_start=$(elapsed "$t0" "$t1")
    log "(f) $h (policy) up (pid ${PID_OF[$hp]}, port $pport) after $t_start s"

    # Enforcement checks (a worker may still be loading: retry the first one
    # briefly until it answers at all).
    local px=(-x "http://127.0.0.1:$pport") i checks=""
    for ((i = 0; i < 50; i++)); do
        code=$(curl -sS --max-time 5 "${px[@]}" -o /dev/null -w '%{http_code}' \
               "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
        [[ $code != 000 && -n $code ]] && break
        sleep 0.1
    done
    if [[ $code != 407 ]]; then
        policy_fail "$h" "no credentials: got '$code', want 407 (auth not enforced)"
    else
        checks+="no credentials -> 407; "
    fi
    code=$(curl -sS --max-time 5 "${px[@]}" -U "bench:wrong-$pw" -o /dev/null -w '%{http_code}' \
           "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
    if [[ $code != 407 ]]; then
        policy_fail "$h" "wrong password: got '$code', want 407"
    else
        checks+="wrong password -> 407; "
    fi
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -D - \
          -w '\nBENCH-RESULT %{http_code}\n' "http://d42.example-block.test/" 2>&1 || true)
    code=$(sed -n 's/^BENCH-RESULT //p' <<<"$out")
    if [[ $code != 403 ]] || ! grep -q 'blocklist' <<<"$out"; then
        policy_fail "$h" "listed domain d42.example-block.test: got '$code'$(grep -q blocklist <<<"$out" || echo ', rule name "blocklist" not in the response'), want 403 naming the rule"
    else
        checks+="d42.example-block.test -> 403 naming 'blocklist'; "
    fi
    # the last entry too (the whole file was loaded) and a subdomain
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -o /dev/null -w '%{http_code}' \
          "http://x.d$POLICY_DOMAINS.example-block.test/" 2>/dev/null || true)
    if [[ $out != 403 ]]; then
        policy_fail "$h" "subdomain of the last entry (x.d$POLICY_DOMAINS.example-block.test): got '$out', want 403"
    else
        checks+="x.d$POLICY_DOMAINS.example-block.test -> 403; "
    fi
    out=$(curl -sS --max-time 5 "${px[@]}" -H "Proxy-Authorization: $auth" -o /dev/null \
          -w '%{http_code} %{size_download}' "http://127.0.0.1:$ORIGIN_PORT/1k" 2>/dev/null || true)
    if [[ $out != "200 1024" ]]; then
        policy_fail "$h" "with credentials, origin /1k: got '$out', want '200 1024'"
    else
        checks+="with credentials, origin -> 200 1024"
    fi
    if ((POLICY_FAILS > fails0)); then
        POLICY_LINES+=("${tag}enforcement checks failed: not timed (passed: ${checks:-none})")
        stop_instance "$hp"
        return 0
    fi
    log "(f) $h: enforcement verified: $checks"
    measure_rss "$hp"
    local rss_idle=${RSS_OF[$hp]}

    # (1) policy off: the running hopcache; (2) policy on.
    run_wrk f "$h"
    RAN[f:$h]=1
    measure_rss "$h"
    RSSROW[f:$h]=${RSS_OF[$h]}
    sleep 1
    PROXY_AUTH_OF[$hp]=$auth
    run_wrk f "$hp"
    RAN[f:$hp]=1
    measure_rss "$hp"
    RSSROW[f:$hp]=${RSS_OF[$hp]}
    local s
    for s in "$h" "$hp"; do
        if [[ ${ERRS[f:$s]} != 0 ]]; then
            policy_fail "$h" "$s: ${ERRS[f:$s]} errors during the timed run (${ERRDETAIL[f:$s]})"
        fi
    done

    POLICY_LINES+=("${tag}ratio policy on / off: $(policy_ratio "$h") ($(printf '%.0f' "${RATE[f:$hp]}") / $(printf '%.0f' "${RATE[f:$h]}") req/s; p99 ${P99[f:$hp]} vs ${P99[f:$h]})")
    POLICY_LINES+=("${tag}enforcement verified before timing: $checks")
    POLICY_LINES+=("${tag}domain list: $lines entries, $((bytes / 1024)) KiB; hopcache -t: ${t_test} s with it (${t_test_off} s without); start-up until the port accepts: ${t_start} s (hopcache logs no load time)")
    POLICY_LINES+=("${tag}hopcache worker RSS with the list loaded: $(fmt_mib "$rss_idle") MiB before the run, $(fmt_mib "${RSS_OF[$hp]}") MiB after ($(printf '%s' "${RSS_DETAIL[$hp]}")); policy off: $(fmt_mib "${RSS_OF[$h]}") MiB")

    # Stop the policy instance (and its workers) now, by PID.
    stop_instance "$hp"
    log "(f) $h (policy) stopped"
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
TLS_FAILS=0

tls_fail() {  # tls_fail INSTANCE MESSAGE...
    local h=$1
    shift
    TLS_FAILED=$*
    [[ $h == hopcache ]] || TLS_FAILED="$h: $*"
    TLS_FAILS=$((TLS_FAILS + 1))
    log "error: (g) $TLS_FAILED"
    TLS_LINES+=("$(line_tag "$h")FAIL: $*")
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

run_tls() {  # run_tls INSTANCE (hopcache | hopcache-base)
    local h=$1 tag
    tag=$(line_tag "$h")
    if [[ " ${ACTIVE[*]} " != *" $h "* ]]; then
        log "(g) skipped: $h is not running"
        TLS_LINES+=("${tag}skipped: $h is not running (${NOTE_OF[$h]:-not in BENCH_SERVERS})")
        return 0
    fi
    if [[ ${HAS_TLS_OF[$h]} != 1 || -z ${TLS_PORT_OF[$h]} ]]; then
        tls_fail "$h" "$h has no HTTPS proxy port: ${TLS_NOTE_OF[$h]:-unknown reason}"
        return 0
    fi
    local out probe probe_nt dir="$WORK/$h-notickets" ini nt_port
    local hn=$h+notickets tport=${TLS_PORT_OF[$h]} pport=${PORT_OF[$h]}

    # Check the HTTPS port before anything is timed.
    out=$(tls_curl "$tport")
    if [[ $out != "200 1024" ]]; then
        tls_fail "$h" "curl --proxy https://127.0.0.1:$tport --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k: got '$out', want '200 1024'"
        return 0
    fi
    log "(g) curl through the HTTPS proxy port: $out"
    probe=$(tls_probe "$tport" "$WORK/hopcache-tls/session-$h.pem")
    log "(g) $h TLS port: $probe"

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
    awk -v port="${NOTIX_PORT_OF[$h]}" -v dir="$dir" -v cachedir="$WORK/$h-cache-notickets" '
        /^\[/ { section = $0 }
        section == "[proxy]" && /^listen = / { print "listen = 127.0.0.1:" port; next }
        /^error = / { print "error = " dir "/error.log"; next }
        /^access = / { print "access = " dir "/access.log"; next }
        /^dir = / { print "dir = " cachedir; next }
        { print }
    ' "${INI_OF[$h]}" > "$ini"
    OPENSSL_CONF="$dir/openssl.cnf" "${BIN_OF[$h]}" -f -c "$ini" >"$dir/stdout.log" 2>&1 &
    PID_OF[$hn]=$!
    STARTED+=("${PID_OF[$hn]}")
    PORT_OF[$hn]=${NOTIX_PORT_OF[$h]}
    if ! wait_port "${PORT_OF[$hn]}" "${PID_OF[$hn]}" "$h (no tickets)" \
        || ! nt_port=$(tls_port_from_log "${PID_OF[$hn]}" "$dir"); then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        tls_fail "$h" "the second $h (OPENSSL_CONF with NumTickets = 0) did not start its HTTPS port (see its error log)"
        stop_instance "$hn"
        return 0
    fi
    out=$(tls_curl "$nt_port")
    if [[ $out != "200 1024" ]]; then
        tls_fail "$h" "$h (no tickets): curl --proxy https://127.0.0.1:$nt_port --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k: got '$out', want '200 1024'"
        stop_instance "$hn"
        return 0
    fi
    probe_nt=$(tls_probe "$nt_port" "$dir/session.pem")
    log "(g) $h (no tickets) TLS port $nt_port: $probe_nt"
    if [[ $probe_nt != *"reconnect: New"* ]]; then
        TLS_WARN[g3t:$hn]="WARNING: reconnects are not full handshakes (s_client: ${probe_nt##*reconnect: })"
        log "(g) ${TLS_WARN[g3t:$hn]}"
    fi
    measure_rss "$h"
    local rss_idle=${RSS_OF[$h]}

    local -a plan=(
        "g1p $h http://127.0.0.1:$pport/"
        "g1t $h https://127.0.0.1:$tport/"
        "g2p $h http://127.0.0.1:$pport/"
        "g2t $h https://127.0.0.1:$tport/"
        "g3t $hn https://127.0.0.1:$nt_port/"
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
            tls_fail "$h" "($key) $s: ${ERRS[$key:$s]} errors during the timed run (${ERRDETAIL[$key:$s]})"
        fi
        sleep 1
    done

    local resumed="wrk 4.1 keeps its TLS session across reconnects and offers it, and hopcache resumes it (s_client reconnect: Reused), so these are resumed handshakes (TLS 1.3: PSK + ECDHE, no certificate, no signature)"
    [[ $probe == *"reconnect: Reused" ]] \
        || resumed="s_client reconnect: ${probe##*reconnect: } -- so not necessarily resumed handshakes"
    TLS_LINES+=("${tag}HTTPS proxy port 127.0.0.1:$tport; certificate: throwaway self-signed ECDSA P-256 (prime256v1); negotiated (openssl s_client): $probe")
    TLS_LINES+=("${tag}checked before timing: curl --proxy https://127.0.0.1:PORT --proxy-insecure http://127.0.0.1:$ORIGIN_PORT/1k -> 200 1024 on both instances")
    TLS_LINES+=("${tag}(g1) keep-alive, TLS / plain port: $(tls_ratio "g1t:$h" "g1p:$h") ($(rps_of "g1t:$h") / $(rps_of "g1p:$h") req/s; p99 ${P99[g1t:$h]} vs ${P99[g1p:$h]})")
    TLS_LINES+=("${tag}(g2) new connection per request, TLS (session resumed) / plain port: $(tls_ratio "g2t:$h" "g2p:$h") ($(rps_of "g2t:$h") / $(rps_of "g2p:$h") req/s; p99 ${P99[g2t:$h]} vs ${P99[g2p:$h]}); $resumed")
    TLS_LINES+=("${tag}(g3) new connection per request, TLS full handshake / plain port: $(tls_ratio "g3t:$hn" "g2p:$h") ($(rps_of "g3t:$hn") / $(rps_of "g2p:$h") req/s; p99 ${P99[g3t:$hn]} vs ${P99[g2p:$h]}); second hopcache with OPENSSL_CONF NumTickets = 0, negotiated: $probe_nt")
    TLS_LINES+=("${tag}hopcache worker CPU (user + system, /proc) per completed request: g1 plain $(cpu_of "g1p:$h"), g1 TLS $(cpu_of "g1t:$h"), g2 plain $(cpu_of "g2p:$h"), g2 TLS resumed $(cpu_of "g2t:$h"), g3 TLS full handshake $(cpu_of "g3t:$hn") (less dependent on the machine's other load than the rates; wrk does the client side of every handshake on the same 2 cores)")
    TLS_LINES+=("${tag}hopcache worker RSS: $(fmt_mib "$rss_idle") MiB before (g), after each run: $(fmt_mib "${RSSROW[g1p:$h]}") / $(fmt_mib "${RSSROW[g1t:$h]}") / $(fmt_mib "${RSSROW[g2p:$h]}") / $(fmt_mib "${RSSROW[g2t:$h]}") MiB (g1 plain, g1 TLS, g2 plain, g2 TLS); no-tickets instance after (g3): $(fmt_mib "${RSSROW[g3t:$hn]}") MiB (${RSS_DETAIL[$hn]})")

    stop_instance "$hn"
    log "(g) $h (no tickets) stopped"
    sleep 1
}
declare -A TLS_WARN=()

# ------------------------------------------------------- idle memory (m) --
# (m), every server (issue 11): memory held per idle keep-alive client
# connection. For each server in turn: one warm-up request (curl), then the
# server's memory, then bench/idle_conns.py opens BENCH_IDLE_CONNS
# connections (BENCH_IDLE_INFLIGHT at a time connecting or awaiting their
# response), sends ONE complete request on each (the (a) request: /1k,
# no-store, absolute-form to a proxy, origin-form to nginx), reads each full
# response and keeps every socket open and idle; BENCH_IDLE_SETTLE seconds
# after the last response it reports how many the server still holds open,
# and the server's memory is taken again. Then the client closes them all.
#   KiB per connection = (with - before) / connections still open
# Memory = Pss ("proportional set size", /proc/PID/smaps_rollup: each page
# shared by k processes counts 1/k) summed over the server's processes: the
# PID started here and all its descendants (hopcache and nginx: master +
# worker; squid -N and tinyproxy: one process). VmRSS is used instead when
# the kernel has no smaps_rollup (before 4.14); the report says which.
# Kernel memory (socket buffers, TCP state) is not in either.
MEM_FIELD=Pss
[[ -r /proc/self/smaps_rollup ]] || MEM_FIELD=VmRSS

mem_kib() {  # mem_kib PID -> MEM_FIELD in KiB summed over PID and its descendants; "KIB NPROCS"
    local p t=0 n=0 v
    for p in "$1" $(descendants "$1"); do
        if [[ $MEM_FIELD == Pss ]]; then
            v=$(awk '$1 == "Pss:" { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        else
            v=$(status_kib "$p" VmRSS)
        fi
        [[ -n $v ]] || continue
        t=$((t + v)) n=$((n + 1))
    done
    echo "$t $n"
}

declare -A IDLE_KIB=() IDLE_DETAIL=() IDLE_WARN=()
IDLE_OPEN_TIMEOUT=$((60 + IDLE_CONNS / 100))   # seconds for the open phase (bounded)
run_idle() {  # run_idle SERVER -- scenario (m)
    local s=$1 pid=${PID_OF[$1]} target raw rel out before after nb na ready="" done_line="" i rc=0
    local ok failed open closed cclose secs errs
    raw="$WORK/results/m-$s.txt"
    rel="$WORK/results/m-$s.release"
    rm -f "$rel"
    if [[ $s == direct ]]; then target=/1k; else target="http://127.0.0.1:$ORIGIN_PORT/1k"; fi
    local -a px=(--noproxy '*')
    [[ $s != direct ]] && px=(-x "http://127.0.0.1:${PORT_OF[$s]}")
    out=$(curl -sS --max-time 5 "${px[@]}" -A hopcache-bench/warmup -o /dev/null \
          -w '%{http_code} %{size_download}' "http://127.0.0.1:$ORIGIN_PORT/1k" 2>&1 || true)
    [[ $out == "200 1024" ]] || IDLE_WARN[$s]="WARNING: warm-up request got '$out'"
    sleep 0.5
    read -r before nb <<<"$(mem_kib "$pid")"
    log "(m) $s: $MEM_FIELD $(fmt_mib "$before") MiB ($nb $(plural "$nb" process processes)); opening $IDLE_CONNS idle keep-alive connections ($IDLE_INFLIGHT at a time), GET $target"
    timeout -k 5 $((IDLE_OPEN_TIMEOUT + IDLE_SETTLE + 120)) \
        python3 "$BENCH_DIR/idle_conns.py" --port "${PORT_OF[$s]}" --target "$target" \
            --host "127.0.0.1:$ORIGIN_PORT" --conns "$IDLE_CONNS" --inflight "$IDLE_INFLIGHT" \
            --settle "$IDLE_SETTLE" --open-timeout "$IDLE_OPEN_TIMEOUT" --hold 60 \
            --release "$rel" >"$raw" 2>&1 &
    LOAD_PIDS=($!)
    # Wait (bounded) for READY: every connection done and settled.
    for ((i = 0; i < (IDLE_OPEN_TIMEOUT + IDLE_SETTLE + 30) * 10; i++)); do
        ready=$(grep '^READY ' "$raw" 2>/dev/null || true)
        [[ -n $ready ]] && break
        kill -0 "${LOAD_PIDS[0]}" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -n $ready ]]; then
        read -r after na <<<"$(mem_kib "$pid")"
        measure_rss "$s" nomax
        RSSROW[m:$s]=${RSS_OF[$s]}
    fi
    : >"$rel"
    wait "${LOAD_PIDS[0]}" || rc=$?
    LOAD_PIDS=()
    done_line=$(grep '^DONE ' "$raw" 2>/dev/null || true)
    ready=$(grep '^READY ' "$raw" 2>/dev/null || true)
    RAN[m:$s]=1
    P99[m:$s]="n/a"
    if [[ -z $ready ]]; then
        IDLE_KIB[$s]=""
        ERRS[m:$s]=1
        ERRDETAIL[m:$s]="idle_conns.py failed (exit $rc): $(tail -n 1 "$raw" | cut -c1-120)"
        RSSROW[m:$s]=0
        log "(m) $s: ${ERRDETAIL[m:$s]}"
        return 0
    fi
    ok=$(idle_field ok "$ready") failed=$(idle_field failed "$ready")
    open=$(idle_field open "$ready") closed=$(idle_field closed "$ready")
    cclose=$(idle_field conn_close "$ready") secs=$(idle_field seconds "$ready")
    errs=$(idle_field errors "$ready")
    local open_after
    open_after=$(sed -n 's/^DONE open=\([0-9]*\).*/\1/p' <<<"$done_line")
    ERRS[m:$s]=$failed
    ERRDETAIL[m:$s]=${errs//_/ }
    if ((open > 0)); then
        IDLE_KIB[$s]=$(awk -v a="$after" -v b="$before" -v n="$open" 'BEGIN { printf "%.1f", (a - b) / n }')
    else
        IDLE_KIB[$s]=""
    fi
    local d
    d="$MEM_FIELD $(fmt_mib "$before") MiB before, $(fmt_mib "$after") MiB with the connections open ($na $(plural "$na" process processes))"
    d+="; $ok of $IDLE_CONNS responses complete in $secs s, $open still open after ${IDLE_SETTLE} s"
    ((failed)) && d+=", $failed failed (${errs//_/ })"
    ((closed)) && d+=", $closed closed by the server after their response"
    ((cclose)) && d+=" ($cclose announced Connection: close)"
    [[ -n $open_after && $open_after != "$open" ]] && d+="; $open_after open after the measurement"
    IDLE_DETAIL[$s]=$d
    if ((open < IDLE_CONNS)); then
        local w="WARNING: only $open of $IDLE_CONNS connections held open"
        [[ ${KEEPALIVE_OF[$s]:-} == closes ]] && w+=" (closes every client connection after its response)"
        IDLE_WARN[$s]="${IDLE_WARN[$s]:+${IDLE_WARN[$s]}; }$w"
    fi
    log "(m) $s: ${IDLE_KIB[$s]:-n/a} KiB per idle connection; $d"
}
plural() { if [[ $1 == 1 ]]; then echo "$2"; else echo "$3"; fi; }   # plural N ONE MANY
idle_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }   # idle_field NAME LINE
idle_ratio() {  # idle_ratio SERVER -> KiB per connection / direct's
    local d=${IDLE_KIB[direct]:-} v=${IDLE_KIB[$1]:-}
    if [[ -z $d || -z $v ]]; then echo "n/a"; return; fi
    awk -v d="$d" -v v="$v" 'BEGIN { if (d > 0) printf "%.2f", v / d; else print "n/a" }'
}

# hopcache instances (f and g run once per instance).
declare -a HOPS=(hopcache)
[[ " $SERVERS " == *" hopcache-base "* ]] && HOPS+=(hopcache-base)

uniq_sc=""
for sc in $SCENARIOS; do
    case $sc in a|b|c|d|e|f|g|h|i|m) ;; *) die "unknown scenario '$sc' in BENCH_SCENARIOS" ;; esac
    [[ " $uniq_sc " == *" $sc "* ]] || uniq_sc+="${uniq_sc:+ }$sc"
done
SCENARIOS=$uniq_sc   # each scenario once (results are keyed by scenario)
for sc in $SCENARIOS; do
    if [[ $sc == f ]]; then
        for h in "${HOPS[@]}"; do run_policy "$h"; done
        continue
    fi
    if [[ $sc == g ]]; then
        for h in "${HOPS[@]}"; do run_tls "$h"; done
        continue
    fi
    if [[ $sc == i ]]; then
        run_identity   # hopcache only (bench/identity.sh)
        continue
    fi
    if [[ $sc == h ]]; then
        run_h2page     # hopcache('s instances) and nghttpx (bench/h2.sh)
        continue
    fi
    for s in "${ACTIVE[@]}"; do
        if [[ $sc == m ]]; then
            run_idle "$s"
            sleep 1   # let the closed connections drain
            continue
        fi
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
                is_hopcache "$s" && h1=$((h1 - 1))   # the flush request itself
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
    [m]="(m) idle keep-alive conns x ${IDLE_CONNS}"
    [i]="(i) 1 KiB keep-alive, identity"
    [h2]="(h) page x${H2_OBJECTS}, HTTP/2, 1 TLS conn"
    [h1]="(h) page x${H2_OBJECTS}, HTTP/1.1, ${H2_H1CONNS} TLS conns"
)
declare -A TARGET=([a]=0.40 [b]=0.50 [c]=0.80 [d]=0.80 [e]=0.70)
IDLE_TARGET_KIB=4   # (m), issue 11: memory per idle keep-alive connection

declare -a ROWS=()   # tab-separated: scenario server rate p99 ratio errors rss
for sc in $SCENARIOS; do
    if [[ $sc == f ]]; then
        # hopcache only; the ratio column is policy on / policy off
        for h in "${HOPS[@]}"; do
            for s in "$h" "$h+policy"; do
                [[ -n ${RAN[f:$s]:-} ]] || continue
                errs=${ERRS[f:$s]}
                ((errs)) && errs+=" (${ERRDETAIL[f:$s]})"
                r="1.00 of off"
                [[ $s == "$h+policy" ]] && r="$(policy_ratio "$h") of off"
                ROWS+=("${TITLE[f]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[f:$s]}") req/s"$'\t'"${P99[f:$s]}"$'\t'"$r"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[f:$s]}")")
            done
        done
        continue
    fi
    if [[ $sc == g ]]; then
        # hopcache only; the ratio column is TLS port / plain port (same
        # workload, same run; g3 against the g2 plain-port row)
        for h in "${HOPS[@]}"; do
            for ks in "g1p:$h" "g1t:$h" "g2p:$h" "g2t:$h" "g3t:$h+notickets"; do
                [[ -n ${RAN[$ks]:-} ]] || continue
                key=${ks%%:*} s=${ks#*:}
                case $key in
                    g1p|g2p) r="1.00 vs plain" ;;
                    g1t) r="$(tls_ratio "g1t:$h" "g1p:$h") vs plain" ;;
                    g2t) r="$(tls_ratio "g2t:$h" "g2p:$h") vs plain" ;;
                    g3t) r="$(tls_ratio "g3t:$h+notickets" "g2p:$h") vs plain" ;;
                esac
                errs=${ERRS[$ks]}
                ((errs)) && errs+=" (${ERRDETAIL[$ks]})"
                [[ -n ${TLS_WARN[$ks]:-} ]] && errs+="; ${TLS_WARN[$ks]}"
                ROWS+=("${TITLE[$key]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[$ks]}") req/s"$'\t'"${P99[$ks]}"$'\t'"$r"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[$ks]}")")
            done
        done
        continue
    fi
    if [[ $sc == i ]]; then
        # hopcache only; the ratio column is "of off": rate / the policy-off
        # row of the same binary (hopcache, or hopcache-ldap for l1)
        for s in hopcache hopcache+n1 hopcache+n2 hopcache+l1 hopcache-ldap hopcache-ldap+l1 hopcache-again; do
            [[ -n ${RAN[i:$s]:-} ]] || continue
            off=${s%%+*}
            off=${off%-again}   # the second policy-off run, at the end
            r="$(id_ratio "i:$s" "i:$off") of off"
            errs=${ERRS[i:$s]}
            ((errs)) && errs+=" (${ERRDETAIL[i:$s]})"
            [[ -n ${ID_WARN[i:$s]:-} ]] && errs+="; ${ID_WARN[i:$s]}"
            ROWS+=("${TITLE[i]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[i:$s]}") req/s"$'\t'"${P99[i:$s]}"$'\t'"$r"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[i:$s]}")")
        done
        continue
    fi
    if [[ $sc == h ]]; then
        # hopcache(s) and nghttpx; the ratio column is rate / hopcache's h2
        # row (hopcache-base: / its own h2 row)
        for ks in "h2:hopcache" "h1:hopcache" "h2:hopcache-base" "h1:hopcache-base" "h2:nghttpx" "h1:nghttpx" "h2:hopcache-again"; do
            [[ -n ${RAN[$ks]:-} ]] || continue
            key=${ks%%:*} s=${ks#*:}
            base="h2:hopcache"
            [[ $s == hopcache-base ]] && base="h2:hopcache-base"
            r="$(h2_ratio "$ks" "$base") of $base"
            errs=${ERRS[$ks]}
            ((errs)) && errs+=" (${ERRDETAIL[$ks]})"
            [[ -n ${H2_WARN[$ks]:-} ]] && errs+="; ${H2_WARN[$ks]}"
            ROWS+=("${TITLE[$key]}"$'\t'"$s"$'\t'"$(printf '%.0f' "${RATE[$ks]}") req/s, page ${H2_PAGE_MS[$ks]} ms"$'\t'"${P99[$ks]}"$'\t'"${r/h2:/h2 }"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[$ks]}")")
        done
        continue
    fi
    if [[ $sc == m ]]; then
        # every server; "rate" is KiB per idle connection, the ratio column
        # that / direct's (lower is better), RSS: the worker with them open
        for s in "${ACTIVE[@]}"; do
            [[ -n ${RAN[m:$s]:-} ]] || continue
            errs=${ERRS[m:$s]}
            ((errs)) && errs+=" (${ERRDETAIL[m:$s]})"
            [[ -n ${IDLE_WARN[$s]:-} ]] && errs+="; ${IDLE_WARN[$s]}"
            if [[ -n ${IDLE_KIB[$s]:-} ]]; then rate="${IDLE_KIB[$s]} KiB/conn"; else rate="n/a"; fi
            ROWS+=("${TITLE[m]}"$'\t'"$s"$'\t'"$rate"$'\t'"n/a"$'\t'"$(idle_ratio "$s")"$'\t'"$errs"$'\t'"$(fmt_mib "${RSSROW[m:$s]:-0}")")
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
        [[ $sc == f || $sc == g || $sc == h || $sc == i ]] && continue   # no target; reported under "Policy" / "TLS" / "Page load" / "Identity"
        if [[ $sc == m ]]; then
            if [[ -z ${RAN[m:hopcache]:-} ]]; then continue; fi
            v=${IDLE_KIB[hopcache]:-}
            ok=PASS; why="${v:-n/a} KiB per connection (target <= $IDLE_TARGET_KIB KiB, issue 11)"
            if [[ -z $v ]] || awk -v v="$v" -v t="$IDLE_TARGET_KIB" 'BEGIN { exit !(v > t) }'; then ok=FAIL; fi
            for other in direct squid; do
                [[ -n ${IDLE_KIB[$other]:-} ]] && why+=", $other ${IDLE_KIB[$other]}"
            done
            [[ -n ${IDLE_WARN[hopcache]:-} ]] && { ok=FAIL; why+=", ${IDLE_WARN[hopcache]}"; }
            VERDICT+=("$ok ${TITLE[m]}: $why")
            continue
        fi
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
    if [[ -n ${RSS_DETAIL[hopcache]:-} ]]; then   # some scenario other than (m) ran
        m=${RSS_MAX[hopcache]:-0}
        if ((m <= 16 * 1024)); then ok=PASS; else ok=FAIL; fi
        VERDICT+=("$ok RSS: max hopcache worker $(fmt_mib "$m") MiB after load (target <= 16 MiB)")
    fi
fi

# (m): one line per server, and how it was measured.
declare -a IDLE_LINES=()
if [[ " $SCENARIOS " == *" m "* ]]; then
    IDLE_LINES+=("method: per server, memory = $MEM_FIELD ($([[ $MEM_FIELD == Pss ]] && echo "/proc/PID/smaps_rollup" || echo "/proc/PID/status, no smaps_rollup on this kernel")) summed over the started PID and all its descendants (master + workers), after one warm-up request, then again with $IDLE_CONNS client connections open and idle ($IDLE_SETTLE s after the last of their responses; each connection carried one complete keep-alive GET of the 1 KiB no-store object, $IDLE_INFLIGHT connections in progress at a time); KiB/conn = (with - before) / connections still open; kernel socket memory is not included")
    for s in "${ACTIVE[@]}"; do
        [[ -n ${RAN[m:$s]:-} ]] || continue
        l="$s: ${IDLE_KIB[$s]:-n/a} KiB/conn"
        [[ -n ${IDLE_DETAIL[$s]:-} ]] && l+="; ${IDLE_DETAIL[$s]}"
        ((${ERRS[m:$s]:-0})) && [[ -z ${IDLE_DETAIL[$s]:-} ]] && l+="; ${ERRDETAIL[m:$s]}"
        [[ -n ${IDLE_WARN[$s]:-} ]] && l+="; ${IDLE_WARN[$s]}"
        IDLE_LINES+=("$l")
    done
    [[ -n $IDLE_FD_NOTE ]] && IDLE_LINES+=("WARNING: $IDLE_FD_NOTE")
fi
TARGETS_TITLE="Targets (issues 2 and 3)"
[[ " $SCENARIOS " == *" m "* ]] && TARGETS_TITLE="Targets (issues 2, 3 and 11)"

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

any_rss() {  # did any scenario other than (m) record the servers' RSS?
    local s
    for s in "${ACTIVE[@]}"; do [[ -n ${RSS_DETAIL[$s]:-} ]] && return 0; done
    return 1
}

print_text() {
    local row
    printf '\n%-40s %-13s %15s %10s %9s %8s  %s\n' "scenario" "server" "rate" "p99" "vs direct" "RSS MiB" "errors"
    printf '%s\n' "$(printf '%.0s-' {1..114})"
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r a b c d e f g <<<"$row"
        printf '%-40s %-13s %15s %10s %9s %8s  %s\n' "$a" "$b" "$c" "$d" "$e" "$g" "$f"
    done
    printf '\nload average at start: %s, at end: %s\n' "$LOAD_START" "$LOAD_END"
    if any_rss; then
        printf '\nRSS after the load (worker process, max over scenarios):\n'
        for s in "${ACTIVE[@]}"; do
            printf '  %-13s %6s MiB  (%s)\n' "$s" "$(fmt_mib "${RSS_MAX[$s]:-0}")" "${RSS_DETAIL[$s]:-}"
        done
    fi
    for s in direct hopcache hopcache-base squid tinyproxy; do
        [[ -n ${NOTE_OF[$s]:-} ]] && printf '  note: %s: %s\n' "$s" "${NOTE_OF[$s]}"
    done
    if ((${#IDLE_LINES[@]})); then
        printf '\nIdle keep-alive memory (m, issue 11): KiB per idle client connection; the (m) rows'"'"' ratio column is KiB/conn / direct'"'"'s, RSS the worker with the connections open:\n'
        printf '  %s\n' "${IDLE_LINES[@]}"
    fi
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
    if ((${#H2_LINES[@]})); then
        printf '\nPage load over the HTTPS proxy port (h, issue 13): h2 = one TLS connection, %s streams; h1 = %s keep-alive TLS connections; the (h) rows'"'"' ratio column is rate / hopcache'"'"'s h2 rate:\n' "$H2_STREAMS" "$H2_H1CONNS"
        printf '  %s\n' "${H2_LINES[@]}"
    fi
    if ((${#IDENTITY_LINES[@]})); then
        printf '\nCorporate identity (i, issue 12): hopcache with Negotiate / LDAP groups vs. no auth; the (i) rows'"'"' ratio column is rate / the policy-off row of the same binary:\n'
        printf '  %s\n' "${IDENTITY_LINES[@]}"
    fi
    if ((${#VERDICT[@]})); then
        printf '\n%s:\n' "$TARGETS_TITLE"
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
        [[ -n $HOPCACHE_BASELINE ]] && printf -- '- hopcache-base: %s (HOPCACHE_BASELINE)\n' "$HOPCACHE_BASELINE"
        [[ " $SCENARIOS " == *" i "* && -n $HOPCACHE_LDAP && $HOPCACHE_LDAP != "$HOPCACHE" ]] \
            && printf -- '- hopcache-ldap ((i), l1 and its policy-off row): %s (HOPCACHE_LDAP)\n' "$HOPCACHE_LDAP"
        printf -- '- tools: %s, %s, %s, %s, %s\n' "$(version_of nginx)" "$(version_of squid)" \
            "$(version_of tinyproxy)" "$(version_of wrk)" "$(version_of curl)"
        printf -- '- wrk: -t%s -c%s -d%s --timeout %s; (c): %s rounds x %s parallel tunnels, %s MiB each\n' \
            "$THREADS" "$CONNS" "$DURATION" "$WRK_TIMEOUT" "$CONNECT_ROUNDS" "$CONNECT_PAR" "$BIG_MIB"
        [[ " $SCENARIOS " == *" m "* ]] && printf -- '- (m): %s idle connections, %s in progress at a time, measured %s s after the last response\n' \
            "$IDLE_CONNS" "$IDLE_INFLIGHT" "$IDLE_SETTLE"
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
        if any_rss; then
            printf '\n## RSS after the load\n\n| server | max worker RSS (MiB) | detail |\n|---|---:|---|\n'
            for s in "${ACTIVE[@]}"; do
                printf '| %s | %s | %s |\n' "$s" "$(fmt_mib "${RSS_MAX[$s]:-0}")" "${RSS_DETAIL[$s]:-}"
            done
        fi
        if ((${#IDLE_LINES[@]})); then
            printf '\n## Idle keep-alive memory (m, issue 11)\n\nMemory a server holds per idle keep-alive client connection. In the (m) rows "rate" is KiB per connection, "vs direct" is that / nginx'"'"'s (lower is better), and the RSS column is the worker'"'"'s VmRSS with the connections open.\n\n'
            printf -- '- %s\n' "${IDLE_LINES[@]}"
        fi
        local any=0
        for s in direct hopcache hopcache-base squid tinyproxy; do
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
        if ((${#H2_LINES[@]})); then
            printf '\n## Page load over the HTTPS proxy port (h, issue 13)\n\nA page of %s small no-store objects from the nginx origin, the whole page kept in flight over TLS to the proxy, again and again for the run: (h2) HTTP/2 on ONE TLS connection, %s concurrent streams (h2load; :scheme http, :authority the origin); (h1) HTTP/1.1 on %s keep-alive TLS connections, one request at a time on each (wrk + page.lua, absolute-form) -- what a browser does without h2. hopcache'"'"'s `[tls]` port against nghttpx `--http2-proxy` (TLS frontend, one worker), back to back in one run; hopcache h2 once more at the end. "page" = %s / rate. In the (h) rows the ratio column is rate / hopcache'"'"'s h2 rate.\n\n' "$H2_OBJECTS" "$H2_STREAMS" "$H2_H1CONNS" "$H2_OBJECTS"
            printf -- '- %s\n' "${H2_LINES[@]}"
        fi
        if ((${#IDENTITY_LINES[@]})); then
            printf '\n## Corporate identity (i, issue 12)\n\nhopcache only, the (a) request through `bench/identity.lua` (a `request()` per request in every (i) run, policy off included), back to back in the same run: no auth (off); (n1) `[auth] scheme = negotiate`, `connection_auth = yes`, a Kerberos token on the first request of each connection; (n2) the same with `connection_auth = no`, a fresh token (new authenticator, same cached service ticket) on every request; (l1) `scheme = basic`, `basic_backend = ldap`, `[acl] default = deny` and `[rule.staff] groups = staff`, groups from the worker'"'"'s cache. Real MIT KDC and slapd on loopback. The (i) rows show rate / policy-off rate of the same binary in the ratio column.\n\n'
            printf -- '- %s\n' "${IDENTITY_LINES[@]}"
        fi
        if ((${#VERDICT[@]})); then
            printf '\n## %s\n\n' "$TARGETS_TITLE"
            printf -- '- %s\n' "${VERDICT[@]}"
        fi
        printf '\n"direct" is nginx itself (the limit); "vs direct" is rate / direct rate in the same run ((f) rows: policy on / off; (g) rows: TLS port / plain port of hopcache; (i) rows: rate / the first policy-off row of the same binary; (h) rows: rate / hopcache'"'"'s h2 rate; (m) rows: KiB per idle connection / direct'"'"'s).\n'
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
[[ -n $IDENTITY_FAILED ]] && fails+="scenario (i) FAILED: $IDENTITY_FAILED; "
[[ -n $H2_FAILED ]] && fails+="scenario (h) FAILED: $H2_FAILED; "
if [[ -n $fails ]]; then
    die "${fails%; }"
fi

# shellcheck shell=bash
# shellcheck disable=SC2034  # IDENTITY_* and ID_* are read by run.sh's report
# bench/identity.sh -- scenario (i) of bench/run.sh: the cost of corporate
# identity (issue 12). Sourced by run.sh (it uses run.sh's helpers: run_wrk,
# measure_rss, stop_instance, worker_ticks, wait_port, the RATE/P99/ERRS
# maps); defines run_identity and fills IDENTITY_LINES / IDENTITY_FAILED.
#
# hopcache only. The (a) request (1 KiB no-store, 50 keep-alive connections)
# through bench/identity.lua, timed back to back in one run (in the order
# off, n2, n1, [HOPCACHE_LDAP off], l1: n2 right after its tokens are made):
#   off  the running hopcache (plain bench INI, no [auth])
#   n1   [auth] scheme = negotiate, connection_auth = yes: a Negotiate token
#        (SPNEGO, alice's cached service ticket) on the first request of each
#        connection, none on the later ones (served as the connection's user)
#   n2   the same with connection_auth = no: a fresh token (new authenticator,
#        same cached service ticket) on every request, each used once
#   l1   [auth] scheme = basic, basic_backend = ldap, [acl] default = deny,
#        [rule.staff] groups = staff, allow: every request needs alice's
#        directory groups, from the worker's cache after the first lookup
#        ([ldap] cache_ttl = 3600; Basic credentials from the credential
#        cache, credential_ttl = 3600). With HOPCACHE_LDAP set to another
#        binary (one that has [ldap]), l1 runs on it, against a policy-off
#        instance of that same binary, timed right before l1.
# Servers: a real MIT KDC and a real OpenLDAP slapd (bench/identity_servers.py,
# which imports the integration tests' fixtures krb5_kdc.py and
# slapd_fixture.py from BENCH_FIXTURES, default tests/integration), on free
# 127.0.0.1 ports in the temp dir, stopped by PID at the end of (i) (and by
# run.sh's cleanup on any exit).
# Tokens: made before the timed runs (python3-gssapi), one per request for
# n2: a short calibration run measures how many tokens per second the n2
# instance accepts, then rate x duration x 1.5 (at most BENCH_ID_MAX_TOKENS)
# are made; a wrk thread that runs out stops instead of reusing one, and
# the report says so.
# Before timing, enforcement is checked (no credentials -> 407 with
# "Proxy-Authenticate: Negotiate" / Basic; a token -> 200; a replayed token
# -> 407; connection_auth yes/no on one connection; a user outside staff ->
# 403); if a check fails, that part is not timed, and run.sh exits non-zero.

HOPCACHE_LDAP=${HOPCACHE_LDAP:-}
ID_CALIBRATE=${BENCH_ID_CALIBRATE:-2}
ID_CALIB_TOKENS=${BENCH_ID_CALIB_TOKENS:-30000}
ID_MAX_TOKENS=${BENCH_ID_MAX_TOKENS:-400000}

declare -a IDENTITY_LINES=()
IDENTITY_FAILED=""
IDENTITY_FAILS=0
declare -A ID_WARN=() ID_CPU=() ID_AUTH_DELTA=()

id_fail() {  # id_fail MESSAGE...
    IDENTITY_FAILED=$*
    IDENTITY_FAILS=$((IDENTITY_FAILS + 1))
    log "error: (i) $*"
    IDENTITY_LINES+=("FAIL: $*")
}

# A python3 that has python3-gssapi (Debian's /usr/bin/python3; a python3
# earlier in PATH, e.g. pyenv's, may not).
id_python() {
    local p
    for p in ${BENCH_PYTHON:-} python3 /usr/bin/python3; do
        if "$p" -c 'import gssapi, pytest' >/dev/null 2>&1; then echo "$p"; return 0; fi
    done
    return 1
}

id_free_ports() {  # id_free_ports N -> N distinct free loopback ports
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Start a hopcache instance for (i): the running hopcache's INI with its own
# port, error log and cache dir; ACL lines added to [acl] after
# private_destinations; more sections appended. Extra environment as
# NAME=VALUE arguments after "--".
id_start() {  # id_start NAME BIN PORT ACL_LINES EXTRA_SECTIONS [-- ENV...]
    local name=$1 bin=$2 port=$3 acl=$4 extra=$5 dir="$WORK/$1" ini
    shift 5
    [[ ${1:-} == -- ]] && shift
    mkdir -p "$dir"
    ini="$dir/hopcache.ini"
    awk -v port="$port" -v dir="$dir" -v cachedir="$WORK/$name-cache" -v acl="$acl" '
        /^\[/ { section = $0 }
        section == "[proxy]" && /^listen = / { print "listen = 127.0.0.1:" port; next }
        /^error = / { print "error = " dir "/error.log"; next }
        /^access = / { print "access = " dir "/access.log"; next }
        /^dir = / { print "dir = " cachedir; next }
        { print }
        /^private_destinations = / && acl != "" { print acl }
    ' "${INI_OF[hopcache]}" > "$ini"
    printf '%s\n' "$extra" >> "$ini"
    if ! env "$@" timeout 60 "$bin" -t -c "$ini" >"$dir/configtest.log" 2>&1; then
        id_fail "$name: hopcache -t rejects its INI ($bin): $(grep -v '^$' "$dir/configtest.log" | head -n 3 | tr '\n' ' ')"
        return 1
    fi
    env "$@" "$bin" -f -c "$ini" >"$dir/stdout.log" 2>&1 &
    PID_OF[$name]=$!
    STARTED+=("${PID_OF[$name]}")
    PORT_OF[$name]=$port
    if ! wait_port "$port" "${PID_OF[$name]}" "$name"; then
        tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
        id_fail "$name did not start (see $dir/error.log)"
        return 1
    fi
    log "(i) $name up (pid ${PID_OF[$name]}, port $port)"
}

# curl through PORT: prints "CODE SIZE" then the response's Proxy-Authenticate
# scheme names (space-separated, e.g. "407 0 Negotiate").
id_curl() {  # id_curl PORT [Proxy-Authorization value]
    local port=$1 auth=${2:-} out code schemes
    local -a hdr=()
    [[ -n $auth ]] && hdr=(-H "Proxy-Authorization: $auth")
    out=$(curl -sS --max-time 5 -x "http://127.0.0.1:$port" "${hdr[@]}" -D - -o /dev/null \
          -w 'BENCH-RESULT %{http_code} %{size_download}\n' "http://127.0.0.1:$ORIGIN_PORT/1k" 2>&1 || true)
    out=${out//$'\r'/}
    code=$(sed -n 's/^BENCH-RESULT //p' <<<"$out")
    schemes=$(grep -i '^Proxy-Authenticate:' <<<"$out" | sed 's/^[^:]*: *//; s/ .*//' | tr '\n' ' ')
    echo "${code:-000 0}${schemes:+ ${schemes% }}"
}

id_conncheck() {  # id_conncheck PORT AUTH... -> "STATUSES s1 s2 ..." (one keep-alive connection)
    local port=$1
    shift
    local -a args=()
    local a
    for a in "$@"; do args+=(--auth "$a"); done
    timeout 20 "$ID_PY" "$BENCH_DIR/identity_servers.py" conncheck --port "$port" \
        --target "http://127.0.0.1:$ORIGIN_PORT/1k" --host "127.0.0.1:$ORIGIN_PORT" "${args[@]}" 2>&1 \
        | sed -n 's/^STATUSES //p'
}

# Counter values from a hopcache's /hopcache/metrics (its workers publish
# their counts about once a second): "NAME{labels}" lines matching REGEX,
# summed.
id_metric() {  # id_metric PORT REGEX
    curl -sS --max-time 5 --noproxy '*' "http://127.0.0.1:$1/hopcache/metrics" 2>/dev/null \
        | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $2; n++ } END { if (n) printf "%d", s; else print "n/a" }'
}
id_delta() {  # id_delta BEFORE AFTER
    if [[ $1 == n/a || $2 == n/a ]]; then echo "n/a"; else echo $(($2 - $1)); fi
}

# Make COUNT tokens into FILE; prints the helper's "count=.. seconds=.." part.
id_tokens() {  # id_tokens COUNT FILE
    local out
    out=$(timeout -k 5 600 "$ID_PY" "$BENCH_DIR/identity_servers.py" tokens \
          --krb5-conf "$KRB5_CONF" --ccache "$CCACHE" --count "$1" --out "$2" 2>&1) || {
        log "(i) token generation failed: $out"
        return 1
    }
    sed -n 's/^TOKENS //p' <<<"$out"
}

# User and system CPU time (clock ticks) of a hopcache's workers so far: "USER SYS".
id_ticks() {  # id_ticks SERVER
    local k u=0 y=0 a b
    for k in $(descendants "${PID_OF[$1]}"); do
        read -r a b < <(awk '{ print $14, $15 }' "/proc/$k/stat" 2>/dev/null || echo "0 0")
        u=$((u + ${a:-0})) y=$((y + ${b:-0}))
    done
    echo "$u $y"
}

# One timed run of (i): wrk with identity.lua in MODE, worker CPU per request.
id_wrk() {  # id_wrk SCENARIO SERVER MODE [TOKENFILE]
    local sc=$1 s=$2 mode=$3 tokens=${4:-} u0 y0 u1 y1 line per=0
    if [[ -n $tokens ]]; then per=$(( $(wc -l < "$tokens") / THREADS )); fi
    read -r u0 y0 <<<"$(id_ticks "$s")"
    WRK_SCRIPT="$BENCH_DIR/identity.lua" BENCH_ID_MODE=$mode BENCH_TOKENS=$tokens \
        BENCH_TOKENS_PER_THREAD=$per BENCH_CONNS_PER_THREAD=$((CONNS / THREADS)) \
        run_wrk "$sc" "$s"
    read -r u1 y1 <<<"$(id_ticks "$s")"
    ID_CPU[$sc:$s]=$(awk -v u=$((u1 - u0)) -v y=$((y1 - y0)) -v hz="$CLK_TCK" -v n="${REQS[$sc:$s]:-0}" \
        'BEGIN { if (n > 0) printf "%.0f us (user %.0f + sys %.0f)", (u + y) / hz * 1e6 / n, u / hz * 1e6 / n, y / hz * 1e6 / n; else print "n/a" }')
    ID_CPU_US[$sc:$s]=$(awk -v t=$((u1 - u0 + y1 - y0)) -v hz="$CLK_TCK" -v n="${REQS[$sc:$s]:-0}" \
        'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "" }')
    line=$(grep '^BENCH ' "$WORK/results/$sc-$s.txt" | tail -n 1 || true)
    ID_USED[$sc:$s]=$(sed -n 's/.* tokens_used=\([0-9]*\).*/\1/p' <<<"$line")
    ID_EXHAUSTED[$sc:$s]=$(sed -n 's/.* exhausted=\([0-9]*\).*/\1/p' <<<"$line")
    if [[ $mode == request && ${ID_EXHAUSTED[$sc:$s]:-0} != 0 ]]; then
        ID_WARN[$sc:$s]="WARNING: ran out of tokens (${ID_USED[$sc:$s]} used; ${ID_EXHAUSTED[$sc:$s]} of $THREADS wrk threads stopped early): the rate is too low"
        log "($sc) $s: ${ID_WARN[$sc:$s]}"
    fi
}
declare -A ID_USED=() ID_EXHAUSTED=() ID_CPU_US=()

# Worker CPU per request, policy off / KEY: the throughput ratio the CPU
# cost alone implies when the worker is the bottleneck (less sensitive to
# the rest of the machine than the rates).
id_cpu_ratio() {  # id_cpu_ratio KEY KEY_OFF
    local v=${ID_CPU_US[$1]:-} o=${ID_CPU_US[$2]:-}
    if [[ -z $v || -z $o ]]; then echo "n/a"; return; fi
    awk -v v="$v" -v o="$o" 'BEGIN { if (v > 0) printf "%.2f", o / v; else print "n/a" }'
}

id_ratio() {  # id_ratio KEY KEY_OFF
    local v=${RATE[$1]:-} o=${RATE[$2]:-}
    if [[ -z $v || -z $o ]]; then echo "n/a"; return; fi
    awk -v v="$v" -v o="$o" 'BEGIN { if (o > 0) printf "%.2f", v / o; else print "n/a" }'
}

run_identity() {
    local h=hopcache dir="$WORK/identity" info srv_pid i
    if [[ " ${ACTIVE[*]} " != *" $h "* ]]; then
        log "(i) skipped: hopcache is not running"
        IDENTITY_LINES+=("skipped: hopcache is not running (${NOTE_OF[$h]:-not in BENCH_SERVERS})")
        return 0
    fi
    if ! ID_PY=$(id_python); then
        id_fail "no python3 with python3-gssapi and pytest (apt-get install python3-gssapi python3-pytest; or set BENCH_PYTHON)"
        return 0
    fi
    local ldap_bin=${HOPCACHE_LDAP:-$HOPCACHE}
    [[ -x $ldap_bin ]] || { id_fail "HOPCACHE_LDAP $ldap_bin not found"; return 0; }
    mkdir -p "$dir"
    info="$dir/servers.env"

    # --- the KDC and slapd ------------------------------------------------
    log "(i) starting a KDC and slapd ($ID_PY bench/identity_servers.py; fixtures from ${BENCH_FIXTURES:-tests/integration})"
    BENCH_FIXTURES=${BENCH_FIXTURES:-} timeout -k 5 $((3600 + DUR_S * 10)) \
        "$ID_PY" "$BENCH_DIR/identity_servers.py" serve --dir "$dir/srv" --info "$info" \
        --max-seconds $((1800 + DUR_S * 10)) >"$dir/servers.log" 2>&1 &
    srv_pid=$!
    STARTED+=("$srv_pid")
    PID_OF[identity-servers]=$srv_pid
    for ((i = 0; i < 1800; i++)); do   # at most 180 s (slapd's first load is bounded by 120 s)
        [[ -f $info ]] && break
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -f $info ]]; then
        id_fail "identity_servers.py did not come up: $(tail -n 5 "$dir/servers.log" | tr '\n' ' ')"
        stop_instance identity-servers
        return 0
    fi
    local KDC_ERROR="" SLAPD_ERROR="" KRB5_CONF="" KEYTAB="" CCACHE="" REALM="" KRB_USER="" KDC_PORT=""
    local KDC_PID="" SLAPD_PID="" KRB_MODULE="" SLAPD_MODULE="" LDAP_URI="" LDAP_BASE="" LDAP_BIND_DN=""
    local LDAP_BIND_PASSWORD_FILE="" LDAP_LOAD_SECONDS="" LDAP_STAFF_USER="" LDAP_STAFF_PASSWORD=""
    local LDAP_OTHER_USER="" LDAP_OTHER_PASSWORD="" START_SECONDS=""
    # shellcheck disable=SC1090
    . "$info"
    IDENTITY_LINES+=("servers (up in ${START_SECONDS} s): $([[ -z $KDC_ERROR ]] && echo "MIT KDC (krb5kdc pid $KDC_PID, realm $REALM, 127.0.0.1:$KDC_PORT; fixture $KRB_MODULE)" || echo "no KDC: $KDC_ERROR"); $([[ -z $SLAPD_ERROR ]] && echo "slapd (pid $SLAPD_PID, $LDAP_URI, base $LDAP_BASE, tree loaded in $LDAP_LOAD_SECONDS s; fixture $SLAPD_MODULE)" || echo "no slapd: $SLAPD_ERROR")")
    local hint=" (the fixture module is not in tests/integration of this tree: set BENCH_FIXTURES to the directory that has it)"
    [[ -n $KDC_ERROR ]] && id_fail "the KDC did not start: $KDC_ERROR$([[ $KDC_ERROR == *ModuleNotFoundError* ]] && echo "$hint" || true)"
    [[ -n $SLAPD_ERROR ]] && id_fail "slapd did not start: $SLAPD_ERROR$([[ $SLAPD_ERROR == *ModuleNotFoundError* ]] && echo "$hint" || true)"

    local p_n1 p_n2 p_loff p_l1
    read -r p_n1 p_n2 p_loff p_l1 < <(id_free_ports 4)
    # The proxies get the realm's krb5.conf without the fixture's
    # "clockskew = 2" (there for the tests' expired tickets): MIT's default,
    # 300 s, as in a deployment. The acceptor refuses an authenticator made
    # more than clockskew before it arrives ("Clock skew too great"), so the
    # tokens, made before the timed runs, must be used within 300 s; the
    # replay cache keeps each one that long.
    local proxy_krb5="$dir/krb5-proxy.conf"
    if [[ -n $KRB5_CONF ]]; then grep -v 'clockskew' "$KRB5_CONF" > "$proxy_krb5"; else : > "$proxy_krb5"; fi
    local -a krbenv=(KRB5_CONFIG="$proxy_krb5" KRB5RCACHEDIR="$dir/rcache")
    mkdir -p "$dir/rcache"

    # --- Negotiate instances and their checks -----------------------------
    local neg_ok=0 checks_n=""
    if [[ -z $KDC_ERROR ]]; then
        neg_ok=1
        local neg
        for neg in n1:yes n2:no; do
            local nm=${neg%%:*} ca=${neg#*:} port
            [[ $nm == n1 ]] && port=$p_n1 || port=$p_n2
            id_start "$h+$nm" "$HOPCACHE" "$port" "" \
                "$(printf '[auth]\nscheme = negotiate\nkeytab = %s\nconnection_auth = %s\nreplay_cache = %s\n' \
                    "$KEYTAB" "$ca" "$WORK/$h+$nm/replay.rcache")" -- "${krbenv[@]}" || neg_ok=0
        done
    fi
    if [[ $neg_ok == 1 ]]; then
        local tok out fails0=$IDENTITY_FAILS
        local -a T=()
        if ! out=$(id_tokens 8 "$dir/tokens-check.txt"); then
            id_fail "could not make Negotiate tokens"
        else
            mapfile -t T < "$dir/tokens-check.txt"
            local pn1=${PORT_OF[$h+n1]} pn2=${PORT_OF[$h+n2]} want
            # n1
            out=$(id_curl "$pn1")
            [[ $out == "407 "*" Negotiate"* ]] && checks_n+="n1 no credentials -> 407 Negotiate; " \
                || id_fail "n1: no credentials: got '$out', want 407 with Proxy-Authenticate: Negotiate"
            out=$(id_conncheck "$pn1" "Negotiate ${T[0]}" "" "")
            [[ $out == "200 200 200" ]] && checks_n+="n1 one connection: token, then 2 requests without -> 200 200 200; " \
                || id_fail "n1 (connection_auth = yes): token then two requests without on one connection: got '$out', want '200 200 200'"
            out=$(id_curl "$pn1" "Negotiate ${T[0]}")
            [[ $out == "407 "* ]] && checks_n+="n1 replayed token -> 407; " \
                || id_fail "n1: the same token again (replay): got '$out', want 407"
            # n2
            out=$(id_curl "$pn2")
            [[ $out == "407 "*" Negotiate"* ]] && checks_n+="n2 no credentials -> 407 Negotiate; " \
                || id_fail "n2: no credentials: got '$out', want 407 with Proxy-Authenticate: Negotiate"
            out=$(id_curl "$pn2" "Negotiate ${T[1]}")
            [[ $out == "200 1024"* ]] && checks_n+="n2 token -> 200 1024; " \
                || id_fail "n2: a token: got '$out', want '200 1024'"
            out=$(id_curl "$pn2" "Negotiate ${T[1]}")
            [[ $out == "407 "* ]] && checks_n+="n2 replayed token -> 407; " \
                || id_fail "n2: the same token again (replay): got '$out', want 407"
            out=$(id_conncheck "$pn2" "Negotiate ${T[2]}" "")
            [[ $out == "200 407" ]] && checks_n+="n2 one connection: token, then one without -> 200 407" \
                || id_fail "n2 (connection_auth = no): token then a request without on one connection: got '$out', want '200 407'"
        fi
        if ((IDENTITY_FAILS > fails0)); then
            neg_ok=0
            IDENTITY_LINES+=("Negotiate checks failed: n1 and n2 not timed (passed: ${checks_n:-none})")
        else
            log "(i) Negotiate enforcement verified: $checks_n"
        fi
    fi

    # --- LDAP instances and their checks ------------------------------------
    local ldap_ok=0 checks_l="" loff=$h
    if [[ -z $SLAPD_ERROR ]]; then
        ldap_ok=1
        if [[ $ldap_bin != "$HOPCACHE" ]]; then
            loff=hopcache-ldap
            id_start "$loff" "$ldap_bin" "$p_loff" "" "" || ldap_ok=0
        fi
        id_start "$loff+l1" "$ldap_bin" "$p_l1" $'default = deny\nrules = staff' \
            "$(printf '[auth]\nscheme = basic\nbasic_backend = ldap\ncredential_ttl = 3600\n[ldap]\nuri = %s\nbase = %s\nbind_dn = %s\nbind_password_file = %s\ncache_ttl = 3600\n[rule.staff]\ngroups = staff\naction = allow\n' \
                "$LDAP_URI" "$LDAP_BASE" "$LDAP_BIND_DN" "$LDAP_BIND_PASSWORD_FILE")" || ldap_ok=0
    fi
    local basic_staff=""
    if [[ $ldap_ok == 1 ]]; then
        local fails0=$IDENTITY_FAILS pl=${PORT_OF[$loff+l1]} out
        basic_staff="Basic $(printf '%s:%s' "$LDAP_STAFF_USER" "$LDAP_STAFF_PASSWORD" | base64 -w0)"
        out=$(id_curl "$pl")
        [[ $out == "407 "*" Basic"* ]] && checks_l+="no credentials -> 407 Basic; " \
            || id_fail "l1: no credentials: got '$out', want 407 with Proxy-Authenticate: Basic"
        out=$(id_curl "$pl" "Basic $(printf '%s:wrong-%s' "$LDAP_STAFF_USER" "$LDAP_STAFF_PASSWORD" | base64 -w0)")
        [[ $out == "407 "* ]] && checks_l+="$LDAP_STAFF_USER, wrong password -> 407; " \
            || id_fail "l1: $LDAP_STAFF_USER with a wrong password: got '$out', want 407"
        out=$(id_curl "$pl" "Basic $(printf '%s:%s' "$LDAP_OTHER_USER" "$LDAP_OTHER_PASSWORD" | base64 -w0)")
        [[ $out == "403 "* ]] && checks_l+="$LDAP_OTHER_USER (not in staff) -> 403; " \
            || id_fail "l1: $LDAP_OTHER_USER (right password, not in staff): got '$out', want 403"
        out=$(id_curl "$pl" "$basic_staff")
        [[ $out == "200 1024"* ]] && checks_l+="$LDAP_STAFF_USER (in staff) -> 200 1024" \
            || id_fail "l1: $LDAP_STAFF_USER (in staff): got '$out', want '200 1024'"
        if ((IDENTITY_FAILS > fails0)); then
            ldap_ok=0
            IDENTITY_LINES+=("LDAP checks failed: l1 not timed (passed: ${checks_l:-none})")
        else
            log "(i) LDAP enforcement verified: $checks_l"
        fi
    fi

    # --- tokens: n1 needs one per connection; n2 one per request ------------
    local gen_n1="" gen_cal="" gen_n2="" n2_tokens=0 cal_rate="" cal_note=""
    if [[ $neg_ok == 1 ]]; then
        gen_n1=$(id_tokens "$CONNS" "$dir/tokens-n1.txt") || { id_fail "token generation (n1) failed"; neg_ok=0; }
    fi
    if [[ $neg_ok == 1 ]]; then
        # Calibration: how many tokens a second the n2 instance accepts
        # (not reported as a row; wrk's rate with its own token slice).
        gen_cal=$(id_tokens "$ID_CALIB_TOKENS" "$dir/tokens-cal.txt") || { id_fail "token generation (calibration) failed"; neg_ok=0; }
    fi
    if [[ $neg_ok == 1 ]]; then
        PATH_OF[ical]=/1k
        local saved_dur=$DURATION saved_dur_s=$DUR_S
        DURATION="${ID_CALIBRATE}s" DUR_S=$ID_CALIBRATE
        id_wrk ical "$h+n2" request "$dir/tokens-cal.txt"
        DURATION=$saved_dur DUR_S=$saved_dur_s
        cal_rate=${RATE[ical:$h+n2]:-0}
        local factor=1.5
        if [[ ${ID_EXHAUSTED[ical:$h+n2]:-0} != 0 ]]; then
            factor=3   # the calibration ran out: its rate is a lower bound
            cal_note=" (the calibration ran out of its $ID_CALIB_TOKENS tokens: a lower bound, so x3)"
        fi
        n2_tokens=$(awk -v r="$cal_rate" -v d="$DUR_S" -v f="$factor" -v c="$CONNS" -v m="$ID_MAX_TOKENS" \
            'BEGIN { n = int(r * d * f) + 2 * c + 1000; if (n > m) n = m; print n }')
        log "(i) calibration: n2 accepted $(printf '%.0f' "$cal_rate") tokens/s over ${ID_CALIBRATE} s${cal_note}; making $n2_tokens tokens for n2"
        rm -f "$dir/tokens-cal.txt"
        gen_n2=$(id_tokens "$n2_tokens" "$dir/tokens-n2.txt") || { id_fail "token generation (n2) failed"; neg_ok=0; }
        sleep 1
    fi

    # --- timed runs, back to back ------------------------------------------
    PATH_OF[i]=/1k
    SIZE_OF[i]=1024
    local -A before=()
    local s
    local -a plan=("$h none")
    # n2 right after off: its tokens were made just before (clock skew)
    [[ $neg_ok == 1 ]] && plan+=("$h+n2 request $dir/tokens-n2.txt" "$h+n1 conn $dir/tokens-n1.txt")
    if [[ $ldap_ok == 1 ]]; then
        [[ $loff != "$h" ]] && plan+=("$loff none")
        plan+=("$loff+l1 none")
    fi
    # policy off once more at the end: how much the machine drifted during
    # the runs (the same instance; row "hopcache-again")
    PID_OF[$h-again]=${PID_OF[$h]} PORT_OF[$h-again]=${PORT_OF[$h]}
    plan+=("$h-again none")
    local step mode tokens
    for step in "${plan[@]}"; do
        read -r s mode tokens <<<"$step"
        case $s in
            *+n1|*+n2) before[$s]="$(id_metric "${PORT_OF[$s]}" '^hopcache_auth_total[{].*scheme="negotiate".*result="ok"')" ;;
            *+l1) before[$s]="$(id_metric "${PORT_OF[$s]}" '^hopcache_directory_lookups_total') $(id_metric "${PORT_OF[$s]}" '^hopcache_directory_cache_total[{].*result="hit"') $(id_metric "${PORT_OF[$s]}" '^hopcache_directory_cache_total[{].*result="miss"')" ;;
        esac
        if [[ $s == *+l1 ]]; then
            PROXY_AUTH_OF[$s]=$basic_staff
        fi
        id_wrk i "$s" "$mode" "$tokens"
        RAN[i:$s]=1
        measure_rss "$s"
        RSSROW[i:$s]=${RSS_OF[$s]}
        if [[ ${ERRS[i:$s]} != 0 ]]; then
            id_fail "$s: ${ERRS[i:$s]} errors during the timed run (${ERRDETAIL[i:$s]})"
        fi
        sleep 1
        case $s in
            *+n1|*+n2)
                sleep 0.2
                ID_AUTH_DELTA[$s]=$(id_delta "${before[$s]}" "$(id_metric "${PORT_OF[$s]}" '^hopcache_auth_total[{].*scheme="negotiate".*result="ok"')") ;;
            *+l1)
                local b_l b_h b_m
                read -r b_l b_h b_m <<<"${before[$s]}"
                ID_AUTH_DELTA[$s]="directory lookups $(id_delta "$b_l" "$(id_metric "${PORT_OF[$s]}" '^hopcache_directory_lookups_total')"), memberships cache hits $(id_delta "$b_h" "$(id_metric "${PORT_OF[$s]}" '^hopcache_directory_cache_total[{].*result="hit"')"), misses $(id_delta "$b_m" "$(id_metric "${PORT_OF[$s]}" '^hopcache_directory_cache_total[{].*result="miss"')")" ;;
        esac
    done

    # --- report lines -------------------------------------------------------
    local off_rate
    off_rate=$(rps_of "i:$h")
    # against the mean of the two policy-off runs (start and end)
    local mean_off k l=""
    mean_off=$(awk -v a="${RATE[i:$h]:-0}" -v b="${RATE[i:$h-again]:-0}" 'BEGIN { printf "%.2f", (a + b) / 2 }')
    RATE[i:$h-mean]=$mean_off
    for k in "$h+n1" "$h+n2" "$h+l1"; do
        [[ -n ${RAN[i:$k]:-} ]] && l+=" ${k#*+} $(id_ratio "i:$k" "i:$h-mean"),"
    done
    IDENTITY_LINES+=("policy off again at the end: $(rps_of "i:$h-again") req/s (end / start: $(id_ratio "i:$h-again" "i:$h"); p99 ${P99[i:$h-again]}); rate ratios against the mean of the two off runs ($(printf '%.0f' "$mean_off") req/s):${l%,}$([[ -n $l ]] || echo " none (only l1 on another binary ran)")")
    if [[ $neg_ok == 1 ]]; then
        IDENTITY_LINES+=("(n1) negotiate, connection_auth = yes, token once per connection / off: $(id_ratio "i:$h+n1" "i:$h") ($(rps_of "i:$h+n1") / $off_rate req/s; p99 ${P99[i:$h+n1]} vs ${P99[i:$h]}); tokens sent: ${ID_USED[i:$h+n1]:-?} (one per connection); negotiate logins counted by the proxy (hopcache_auth_total ok): ${ID_AUTH_DELTA[$h+n1]:-n/a} for ${REQS[i:$h+n1]:-?} completed requests; worker CPU per request off / n1: $(id_cpu_ratio "i:$h+n1" "i:$h")")
        IDENTITY_LINES+=("(n2) negotiate, connection_auth = no, a fresh token per request / off: $(id_ratio "i:$h+n2" "i:$h") ($(rps_of "i:$h+n2") / $off_rate req/s; p99 ${P99[i:$h+n2]} vs ${P99[i:$h]}); tokens sent: ${ID_USED[i:$h+n2]:-?} of $n2_tokens made$(if [[ ${ID_EXHAUSTED[i:$h+n2]:-0} != 0 ]]; then echo ", RAN OUT: the rate is a lower bound"; fi); negotiate logins counted (hopcache_auth_total ok): ${ID_AUTH_DELTA[$h+n2]:-n/a} for ${REQS[i:$h+n2]:-?} completed requests; worker CPU per request off / n2: $(id_cpu_ratio "i:$h+n2" "i:$h")")
        IDENTITY_LINES+=("tokens: SPNEGO/Kerberos from $KRB_USER's cached HTTP/localhost service ticket (python3-gssapi, one SecurityContext.step() each, ~1 KB base64); made before timing: n1 $gen_n1; calibration $gen_cal; n2 $gen_n2; calibration run (${ID_CALIBRATE} s, n2 instance): $(printf '%.0f' "${cal_rate:-0}") req/s$cal_note -> n2 token file = rate x ${DUR_S} s x 1.5 + $((2 * CONNS + 1000)) (at most $ID_MAX_TOKENS)")
        IDENTITY_LINES+=("Negotiate enforcement verified before timing: $checks_n")
    fi
    if [[ $ldap_ok == 1 ]]; then
        IDENTITY_LINES+=("(l1) basic + LDAP groups (cached), rule staff / off: $(id_ratio "i:$loff+l1" "i:$loff") ($(rps_of "i:$loff+l1") / $(rps_of "i:$loff") req/s; p99 ${P99[i:$loff+l1]} vs ${P99[i:$loff]}); $LDAP_STAFF_USER on every request; during the run: ${ID_AUTH_DELTA[$loff+l1]:-n/a} (/hopcache/metrics); worker CPU per request off / l1: $(id_cpu_ratio "i:$loff+l1" "i:$loff")$(if [[ $loff != "$h" ]]; then echo "; binary $ldap_bin (HOPCACHE_LDAP), its own policy-off row $loff"; fi)")
        IDENTITY_LINES+=("LDAP enforcement verified before timing: $checks_l")
    fi
    local cpu="hopcache worker CPU (user + system, /proc) per completed request (the \"CPU per request off / X\" figures above are ratios of these: what the worker's CPU cost alone implies for throughput):"
    for step in "${plan[@]}"; do
        read -r s _ <<<"$step"
        cpu+=" $s ${ID_CPU[i:$s]:-n/a};"
    done
    IDENTITY_LINES+=("${cpu%;}")

    # --- stop what (i) started ------------------------------------------------
    for s in "$h+n1" "$h+n2" hopcache-ldap "$loff+l1"; do
        [[ $s == "$h" ]] && continue
        [[ -n ${PID_OF[$s]:-} ]] && kill -0 "${PID_OF[$s]}" 2>/dev/null && stop_instance "$s"
    done
    stop_instance identity-servers
    log "(i) instances, KDC and slapd stopped"
    rm -f "$dir"/tokens-*.txt
    sleep 1
}

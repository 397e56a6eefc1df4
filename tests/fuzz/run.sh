#!/bin/sh
# run.sh [SECONDS] [TARGET...] - build the fuzz targets with clang
# (libFuzzer + ASan + UBSan) in a temporary directory and run each one for
# SECONDS (default 60) over a copy of its seed corpus (with TARGET.dict as
# its dictionary when there is one). New interesting inputs stay in the
# build directory (printed at the end); crashes are left there as crash-*
# files and make the script exit 1.
# Targets: http_request http_response chunked config tls_peek proxy_proto pac credentials conn
# dir_filter h2_translate (the default: all). conn is the whole request path (fuzz_conn.c: one worker's
# connection code, the cache on a temporary LMDB directory) and links every
# module; FUZZ_FLAGS adds libFuzzer options (e.g. FUZZ_FLAGS=-seed=1).
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-http_request http_response chunked config tls_peek proxy_proto pac credentials conn dir_filter h2_translate rate}

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-clang}
build=$(mktemp -d "${TMPDIR:-/tmp}/hopcache-fuzz.XXXXXX")
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$top/src/proto -I$top/src/policy -I$top/src/store -I$top/src/net -I$top/src/proc"

# MIT Kerberos (negotiate.c), as configure finds it
krb5="$(pkg-config --libs krb5-gssapi krb5)"
flags="$flags $(pkg-config --cflags krb5-gssapi krb5)"

status=0
for t in $targets; do
	echo "== $t: building"
	maxlen=4096
	case $t in
	conn)
		# every module but main.c; admin.c wants autoconfig.h (configure's)
		srcs=$(ls "$top"/src/*/*.c | grep -v '/main\.c$')
		printf '#define PACKAGE_VERSION "fuzz"\n' >"$build/autoconfig.h"
		srcs="-I$build $srcs"
		libs="-lldap -llber -lcrypt -lpcre2-8 -levent_openssl -levent_extra -levent_core -liniparser -llmdb -lssl -lcrypto $krb5"
		maxlen=8192 ;;
	config|pac) srcs="$top/src/proc/config.c $top/src/proc/config_ini.c $top/src/proc/config_keys.c $top/src/proc/config_print.c $top/src/proc/config_rules.c $top/src/proc/config_value.c $top/src/net/tls.c $top/src/proc/upstream_config.c $top/src/proc/directory_config.c $top/src/policy/dir_filter.c $top/src/policy/auth.c $top/src/policy/negotiate.c $top/src/proto/http_parser.c $top/src/policy/acl.c $top/src/policy/domainset.c $top/src/policy/cidr.c $top/src/policy/pac.c $top/src/proto/rate.c"
		libs="-liniparser -lcrypt -lssl -lcrypto -lpcre2-8 -levent_core $krb5" ;;
	credentials) srcs="$top/src/policy/auth.c $top/src/policy/negotiate.c $top/src/proto/http_parser.c $top/src/proc/config.c $top/src/proc/config_ini.c $top/src/proc/config_keys.c $top/src/proc/config_print.c $top/src/proc/config_rules.c $top/src/proc/config_value.c $top/src/net/tls.c $top/src/proc/upstream_config.c $top/src/proc/directory_config.c $top/src/policy/dir_filter.c $top/src/policy/acl.c $top/src/policy/domainset.c $top/src/policy/cidr.c $top/src/policy/pac.c $top/src/proto/rate.c"
		libs="-liniparser -lcrypt -lssl -lcrypto -lpcre2-8 -levent_core $krb5" ;;
	tls_peek) srcs="$top/src/proto/tls_peek.c"; libs="" ;;
	dir_filter) srcs="$top/src/policy/dir_filter.c $top/src/policy/acl.c $top/src/policy/cidr.c $top/src/policy/domainset.c"
		libs="-lpcre2-8" ;;
	proxy_proto) srcs="$top/src/proto/proxy_proto.c"; libs="" ;;
	rate) srcs="$top/src/proto/rate.c"; libs="" ;;
	h2_translate) srcs="$top/src/proto/h2_translate.c $top/src/proto/hop.c $top/src/proto/http_parser.c"
		libs="" ;;
	*) srcs="$top/src/proto/http_parser.c"; libs="" ;;
	esac
	# shellcheck disable=SC2086
	$CC $flags -o "$build/fuzz_$t" "$here/fuzz_$t.c" $srcs $libs
	mkdir -p "$build/corpus_$t"
	cp "$here/corpus/$t/"* "$build/corpus_$t/"
	dict=
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	echo "== $t: running ${secs}s"
	# shellcheck disable=SC2086
	if ! (cd "$build" && "./fuzz_$t" -max_total_time="$secs" -max_len=$maxlen $dict \
		${FUZZ_FLAGS:-} -print_final_stats=1 "corpus_$t" >"$build/$t.log" 2>&1); then
		echo "== $t: FAILED (see $build/$t.log)"
		tail -n 40 "$build/$t.log"
		status=1
	else
		grep -E '^(stat::number_of_executed_units|#[0-9]+.*DONE)' "$build/$t.log" || true
		echo "== $t: ok, corpus now $(ls "$build/corpus_$t" | wc -l) inputs"
	fi
done
echo "build dir: $build"
exit $status

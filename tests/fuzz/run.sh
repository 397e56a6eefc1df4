#!/bin/sh
# run.sh [SECONDS] [TARGET...] - build the parser fuzz targets with clang
# (libFuzzer + ASan + UBSan) in a temporary directory and run each one for
# SECONDS (default 60) over a copy of its seed corpus. New interesting inputs
# stay in the build directory (printed at the end); crashes are left there as
# crash-* files and make the script exit 1.
# Targets: http_request http_response chunked config tls_peek pac (the default: all).
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-http_request http_response chunked config tls_peek pac}

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-clang}
build=$(mktemp -d "${TMPDIR:-/tmp}/hopcache-fuzz.XXXXXX")
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$top/src"

status=0
for t in $targets; do
	echo "== $t: building"
	case $t in
	config|pac) srcs="$top/src/config.c $top/src/auth.c $top/src/acl.c $top/src/domainset.c $top/src/cidr.c $top/src/pac.c"
		libs="-liniparser -lcrypt -lcrypto -lpcre2-8 -levent_core" ;;
	tls_peek) srcs="$top/src/tls_peek.c"; libs="" ;;
	*) srcs="$top/src/http_parser.c"; libs="" ;;
	esac
	# shellcheck disable=SC2086
	$CC $flags -o "$build/fuzz_$t" "$here/fuzz_$t.c" $srcs $libs
	mkdir -p "$build/corpus_$t"
	cp "$here/corpus/$t/"* "$build/corpus_$t/"
	echo "== $t: running ${secs}s"
	if ! (cd "$build" && "./fuzz_$t" -max_total_time="$secs" -max_len=4096 \
		-print_final_stats=1 "corpus_$t" >"$build/$t.log" 2>&1); then
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

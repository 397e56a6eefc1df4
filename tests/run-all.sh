#!/usr/bin/env bash
# Build and run the whole test suite twice: a normal build, then one with
# AddressSanitizer + UndefinedBehaviorSanitizer. Each pass runs the cmocka unit
# tests and fuzz-corpus replays (make check) and the pytest integration suite
# against that build's binary. Ends with one line: "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0

step() { printf '\n=== %s\n' "$*"; }

# count_check DIR: add make check's totals: each cmocka test case counts
# (from its log), other programs (fuzz corpus replays) count once each.
count_check() {
	local p f cp cf up uf
	p=$(grep -h '^# PASS:' "$1"/test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
	f=$(grep -hE '^# (FAIL|ERROR|XPASS):' "$1"/test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
	cp=$(cat "$1"/tests/unit/*.log 2>/dev/null | grep -E '^\[  PASSED  \]' | awk '{s+=$4} END {print s+0}')
	cf=$(cat "$1"/tests/unit/*.log 2>/dev/null | grep -E '^\[  FAILED  \] [0-9]+ test' | awk '{s+=$4} END {print s+0}')
	up=$(grep -l '^:test-result: PASS' "$1"/tests/unit/*.trs 2>/dev/null | wc -l)
	uf=$(grep -lE '^:test-result: (FAIL|ERROR)' "$1"/tests/unit/*.trs 2>/dev/null | wc -l)
	passed=$((passed + p - up + cp)); failed=$((failed + f - uf + cf))
}

# count_pytest LOG: add pytest's totals.
count_pytest() {
	local line p f e
	line=$(tail -n 1 "$1")
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}')
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
	e=$(grep -oE '[0-9]+ errors?' <<<"$line" | awk '{print $1}')
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
	if [ -z "$p$f$e" ]; then failed=$((failed + 1)); fi
}

# The builds below are out of tree; an in-tree build (the README's first
# command) would make configure refuse them.
if [ -f "$top/config.status" ]; then
	step "make distclean (the source tree was configured in place)"
	make -C "$top" distclean >/dev/null 2>&1 || true
fi

step "autoreconf"
autoreconf -fi >/dev/null || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

for variant in plain sanitizers; do
	dir="$top/build-$variant"
	rm -rf "$dir"; mkdir -p "$dir"
	opts=()
	[ "$variant" = sanitizers ] && opts=(--enable-sanitizers)
	step "$variant: configure + make"
	if ! (cd "$dir" && "$top/configure" "${opts[@]}" >configure.out 2>&1 && make -j"$jobs" >make.out 2>&1); then
		tail -n 40 "$dir/configure.out" "$dir/make.out" 2>/dev/null
		failed=$((failed + 1))
		continue
	fi
	san="$dir/sanitizer-reports"
	mkdir -p "$san"
	export ASAN_OPTIONS="log_path=$san/asan:detect_leaks=1:abort_on_error=0"
	export UBSAN_OPTIONS="log_path=$san/ubsan:print_stacktrace=1:halt_on_error=1"
	step "$variant: unit tests and fuzz corpus replays (make check)"
	(cd "$dir" && make -j"$jobs" check >check.out 2>&1)
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' "$dir/check.out" || tail -n 30 "$dir/check.out"
	grep -hE '^# (TOTAL|PASS|FAIL)' "$dir/test-suite.log" 2>/dev/null
	[ -f "$dir/test-suite.log" ] || failed=$((failed + 1))
	count_check "$dir"
	for f in "$dir"/tests/unit/*.log "$dir"/tests/fuzz/*.log; do
		[ -f "$f" ] && grep -q -E 'FAILED|ERROR' "$f" && { echo "--- $f"; tail -n 30 "$f"; }
	done
	step "$variant: integration tests (pytest)"
	# the soak test (tests/integration/test_soak.py, 3 minutes) runs in the
	# sanitizers pass only; elsewhere it is skipped, saying so
	soak=0
	[ "$variant" = sanitizers ] && soak=1
	HOPCACHE_SOAK=$soak HOPCACHE="$dir/src/hopcache" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		"$top/tests/integration" 2>&1 | tee "$dir/pytest.out"
	count_pytest "$dir/pytest.out"
	if compgen -G "$san/*" >/dev/null; then
		step "$variant: sanitizer reports"
		head -n 60 "$san"/*
		failed=$((failed + $(ls "$san" | wc -l)))
	fi
done

echo
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]

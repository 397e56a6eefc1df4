#!/usr/bin/env bash
# Run the http-cache-tests suite (cache-tests.fyi) through a forward proxy.
#
#   tests/cache-tests/run.sh [options] PROXY_HOST:PORT [OUT.json]
#
# Starts the suite's origin server on a free loopback port, starts relay.py
# (origin-form -> absolute-form toward that origin, sent to the proxy), runs
# the suite's CLI client against the relay, writes the results JSON to OUT
# (default: tests/cache-tests/results.json) and prints a summary.
#
# Options:
#   --id TEST_ID       run a single test and dump its requests/responses
#                      (client side, then the origin log and the relay log)
#   --timeout SECONDS  bound for the whole client run (default 600)
#   --rewrite-host     relay also rewrites Host to the origin's authority
#   --keep             keep the work dir (origin/relay logs) and print its path
#   --trace            relay writes every connection's bytes to WORKDIR/trace/
#                      (cN.up = sent to the proxy, cN.down = received); implies --keep
#   --summary-args "…" extra arguments for summarize.mjs (e.g. "--by-suite")
#   --package-tests    run the package's test groups as published, without
#                      the files in overrides/ (see README.md, "Overrides")
#
# Exit status: 0 when the suite ran and produced results (whatever they say),
# 1 when it could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
test_id=""
timeout_s=600
rewrite_host=""
keep=0
trace=0
summary_args=""
package_tests=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --id) test_id=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --rewrite-host) rewrite_host="--rewrite-host"; shift ;;
    --keep) keep=1; shift ;;
    --trace) trace=1; keep=1; shift ;;
    --summary-args) summary_args=$2; shift 2 ;;
    --package-tests) package_tests=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    --*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 [--id TEST_ID] [--timeout S] [--rewrite-host] [--keep] [--trace] PROXY_HOST:PORT [OUT.json]" >&2
  exit 2
fi
proxy=$1
out=${2:-$here/results.json}

suite="$here/node_modules/http-cache-tests"
if [[ ! -f "$suite/cli.mjs" ]]; then
  echo "run.sh: installing the suite (npm ci in $here)" >&2
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# The groups in overrides/ replace the package's files of the same name, in
# a copy of the package next to it (so node still finds its dependencies).
if ((package_tests == 0)); then
  overlay="$here/node_modules/.suite-with-overrides"
  rm -rf "$overlay"
  cp -a "$suite" "$overlay"
  for f in "$here"/overrides/*.mjs; do
    [[ -f "$f" ]] || continue
    cp "$f" "$overlay/tests/$(basename "$f")"
    echo "run.sh: override: tests/$(basename "$f") (overrides/, see README.md)" >&2
  done
  suite="$overlay"
fi
export CACHE_TESTS_SUITE_DIR="$suite"

if ! python3 - "$proxy" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(':')
try:
    socket.create_connection((host.strip('[]'), int(port)), timeout=5).close()
except (OSError, ValueError) as e:
    sys.exit(f'run.sh: cannot connect to the proxy {sys.argv[1]}: {e}')
PY
then
  exit 1
fi

work=$(mktemp -d /tmp/hopcache-cache-tests.XXXXXX)
origin_pid=""
relay_pid=""
cli_pid=""
cleanup() {
  [[ -n "$cli_pid" ]] && kill "$cli_pid" 2>/dev/null || true
  [[ -n "$relay_pid" ]] && kill "$relay_pid" 2>/dev/null || true
  [[ -n "$origin_pid" ]] && kill "$origin_pid" 2>/dev/null || true
  [[ -n "$relay_pid" ]] && wait "$relay_pid" 2>/dev/null || true
  [[ -n "$origin_pid" ]] && wait "$origin_pid" 2>/dev/null || true
  if [[ $keep -eq 1 ]]; then
    echo "run.sh: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# wait_port FILE PID: wait (max 15 s) for a "listening on HOST:PORT" line; print PORT
wait_port() {
  local file=$1 pid=$2 i
  for ((i = 0; i < 150; i++)); do
    if grep -qE 'listening on .*:[0-9]+' -i "$file" 2>/dev/null; then
      grep -oiE 'listening on [^ ]*:[0-9]+' "$file" | head -1 | grep -oE '[0-9]+$'
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: $file: no listening port" >&2
  cat "$file" >&2
  return 1
}

# 1. the suite's origin server, loopback only, any free port
node "$here/origin.mjs" --host 127.0.0.1 --port 0 >"$work/origin.log" 2>&1 &
origin_pid=$!
origin_port=$(wait_port "$work/origin.log" "$origin_pid")

# 2. the relay: client (origin-form) -> proxy (absolute-form toward the origin)
python3 "$here/relay.py" --listen 127.0.0.1:0 --proxy "$proxy" \
  --origin "127.0.0.1:$origin_port" $rewrite_host --log "$work/relay.log" \
  $( ((trace)) && echo --trace "$work/trace") \
  >"$work/relay.out" 2>&1 &
relay_pid=$!
relay_port=$(wait_port "$work/relay.out" "$relay_pid")

echo "run.sh: origin 127.0.0.1:$origin_port, relay 127.0.0.1:$relay_port -> proxy $proxy" >&2

# 3. the suite's CLI client (equivalent of `npm run --silent cli --base=...`)
export npm_config_base="http://127.0.0.1:$relay_port"
export npm_config_id="$test_id"
# cli.mjs reads npm_config_id || npm_package_config_id and wants "" for "all"
export npm_package_config_id="$test_id"

# run_cli OUTFILE DONE_TEST: run the client in the background; once DONE_TEST
# (a shell command) says its output is complete, give it 1 s and stop it.
# The client prints its results when every test has settled, but it does not
# exit while a keep-alive connection still waits for response bytes that the
# proxy never sends (a proxy with broken message framing, e.g. a Content-Length
# that does not match the body); without this the run would last until the
# relay's idle timeout. Sets cli_rc and cli_hung.
run_cli() {
  local outfile=$1 done_test=$2 deadline=$((SECONDS + timeout_s))
  (cd "$suite" && exec node --no-warnings cli.mjs) >"$outfile" 2>"$work/cli.err" &
  cli_pid=$!
  cli_hung=0
  while kill -0 "$cli_pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "run.sh: the suite client ran out of time ($timeout_s s)" >&2
      kill "$cli_pid" 2>/dev/null || true
      break
    fi
    if eval "$done_test"; then
      sleep 1
      if kill -0 "$cli_pid" 2>/dev/null; then
        cli_hung=1
        kill "$cli_pid" 2>/dev/null || true
      fi
      break
    fi
    sleep 0.5
  done
  cli_rc=0
  wait "$cli_pid" 2>/dev/null || cli_rc=$?
  cli_pid=""
  if ((cli_hung)); then cli_rc=0; fi
}

if [[ -n "$test_id" ]]; then
  run_cli "$work/dump.txt" 'grep -q "==== Results" "$work/dump.txt" && [[ $(tail -n 1 "$work/dump.txt") == *" - "* ]]'
  cat "$work/dump.txt" "$work/cli.err"
  kill "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  echo "--- origin log ($work/origin.log)"
  cat "$work/origin.log"
  echo "--- relay log"
  cat "$work/relay.log" 2>/dev/null || true
  exit 0
fi

start=$SECONDS
run_cli "$work/results.json" '[[ $(tail -c 2 "$work/results.json" 2>/dev/null) == "}" ]]'
elapsed=$((SECONDS - start))
if [[ $cli_rc -ne 0 ]] || ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d else 1)' "$work/results.json" 2>/dev/null; then
  echo "run.sh: the suite client failed (exit $cli_rc, after $elapsed s)" >&2
  tail -20 "$work/cli.err" >&2 || true
  head -c 2000 "$work/results.json" >&2 || true
  keep=1
  exit 1
fi
cp "$work/results.json" "$out"
kill "$relay_pid" 2>/dev/null || true
wait "$relay_pid" 2>/dev/null || true
relay_pid=""
nreq=$(grep -c ' HTTP/1\.[01]$' "$work/relay.log" || true)
echo "run.sh: suite ran in $elapsed s; $nreq requests relayed; results in $out" >&2
if ((cli_hung)); then
  echo "run.sh: note: the client still had connections waiting for response bytes after its results were out (broken framing from the proxy?); stopped it" >&2
fi
# shellcheck disable=SC2086
node "$here/summarize.mjs" "$out" $summary_args

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
#                      (client side on stdout; origin side in the work dir log)
#   --timeout SECONDS  bound for the whole client run (default 600)
#   --rewrite-host     relay also rewrites Host to the origin's authority
#   --keep             keep the work dir (origin/relay logs) and print its path
#   --summary-args "…" extra arguments for summarize.mjs (e.g. "--by-suite")
#
# Exit status: 0 when the suite ran and produced results (whatever they say),
# 1 when it could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
test_id=""
timeout_s=600
rewrite_host=""
keep=0
summary_args=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --id) test_id=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --rewrite-host) rewrite_host="--rewrite-host"; shift ;;
    --keep) keep=1; shift ;;
    --summary-args) summary_args=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    --*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 [--id TEST_ID] [--timeout S] [--rewrite-host] [--keep] PROXY_HOST:PORT [OUT.json]" >&2
  exit 2
fi
proxy=$1
out=${2:-$here/results.json}

suite="$here/node_modules/http-cache-tests"
if [[ ! -f "$suite/cli.mjs" ]]; then
  echo "run.sh: installing the suite (npm ci in $here)" >&2
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >&2
fi

work=$(mktemp -d /tmp/hopcache-cache-tests.XXXXXX)
origin_pid=""
relay_pid=""
cleanup() {
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
trap 'exit 130' INT TERM

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
  >"$work/relay.out" 2>&1 &
relay_pid=$!
relay_port=$(wait_port "$work/relay.out" "$relay_pid")

echo "run.sh: origin 127.0.0.1:$origin_port, relay 127.0.0.1:$relay_port -> proxy $proxy" >&2

# 3. the suite's CLI client (equivalent of `npm run --silent cli --base=...`)
export npm_config_base="http://127.0.0.1:$relay_port"
export npm_config_id="$test_id"
# cli.mjs reads npm_config_id || npm_package_config_id and wants "" for "all"
export npm_package_config_id="$test_id"
if [[ -n "$test_id" ]]; then
  (cd "$suite" && timeout "$timeout_s" node --no-warnings cli.mjs) || true
  kill "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  echo "--- origin log ($work/origin.log)"
  cat "$work/origin.log"
  echo "--- relay log"
  cat "$work/relay.log" 2>/dev/null || true
  exit 0
fi

start=$(date +%s)
rc=0
(cd "$suite" && timeout "$timeout_s" node --no-warnings cli.mjs) >"$work/results.json" 2>"$work/cli.err" || rc=$?
end=$(date +%s)
if [[ $rc -ne 0 ]] || ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d else 1)' "$work/results.json" 2>/dev/null; then
  echo "run.sh: the suite client failed (exit $rc, after $((end - start)) s)" >&2
  tail -20 "$work/cli.err" >&2 || true
  head -c 2000 "$work/results.json" >&2 || true
  keep=1
  exit 1
fi
cp "$work/results.json" "$out"
echo "run.sh: suite ran in $((end - start)) s; $(wc -l <"$work/relay.log") requests relayed; results in $out" >&2
# shellcheck disable=SC2086
node "$here/summarize.mjs" "$out" $summary_args

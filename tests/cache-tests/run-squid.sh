#!/usr/bin/env bash
# Reference run: the cache-tests suite through Debian's Squid as a forward
# proxy with a memory-only cache, using the same harness as hopcache.
#
#   tests/cache-tests/run-squid.sh [OUT.json] [run.sh options...]
#
# Starts squid -N on a free loopback port with a throw-away config in a temp
# dir (cache_mem 256 MB, maximum_object_size_in_memory 1 MB, no cache_dir),
# runs run.sh against it, then stops that squid by its PID.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/results-squid.json}
shift || true
squid_bin=$(command -v squid || echo /usr/sbin/squid)
[[ -x "$squid_bin" ]] || { echo "run-squid.sh: squid not installed (apt-get install squid)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/hopcache-squid.XXXXXX)
cat >"$dir/squid.conf" <<EOF
http_port 127.0.0.1:$port
cache_mem 256 MB
maximum_object_size_in_memory 1 MB
# no cache_dir: memory cache only
http_access allow localhost
http_access deny all
pid_filename $dir/squid.pid
access_log $dir/access.log
cache_log $dir/cache.log
cache_store_log none
coredump_dir $dir
visible_hostname cache-tests-squid
shutdown_lifetime 1 seconds
EOF
# squid started as root drops privileges to the "proxy" user
if [[ $(id -u) -eq 0 ]] && id proxy >/dev/null 2>&1; then chown -R proxy:proxy "$dir"; fi

"$squid_bin" -N -f "$dir/squid.conf" >"$dir/stdout" 2>&1 &
squid_pid=$!
stop_squid() {
  kill "$squid_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$squid_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$squid_pid" 2>/dev/null || true
  wait "$squid_pid" 2>/dev/null || true
  if [[ " $* " == *" --keep "* ]]; then
    echo "run-squid.sh: squid logs kept in $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap 'stop_squid "$@"' EXIT

for _ in $(seq 1 100); do
  if grep -q "Accepting HTTP Socket connections" "$dir/cache.log" 2>/dev/null; then break; fi
  kill -0 "$squid_pid" 2>/dev/null || { cat "$dir/stdout" "$dir/cache.log" >&2; exit 1; }
  sleep 0.1
done
echo "run-squid.sh: $("$squid_bin" -v | head -1) on 127.0.0.1:$port" >&2
"$here/run.sh" "$@" "127.0.0.1:$port" "$out"

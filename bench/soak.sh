#!/usr/bin/env bash
# The soak test of issue 14: load, faults and an abusive client through
# hopcache for SOAK_MINUTES (default 10), then one table of pass criteria.
# A thin wrapper around tests/soak/soak.py (see bench/README.md, "Soak test");
# every knob is an environment variable it reads (HOPCACHE, SOAK_MINUTES,
# SOAK_LIMITS, SOAK_ADMIN, SOAK_SEED, SOAK_OUT, ...). Exit status 0 only when
# every criterion holds.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${HOPCACHE:-}" ]; then
	for cand in "$top/src/hopcache" "$top/build-plain/src/hopcache"; do
		if [ -x "$cand" ]; then HOPCACHE=$cand; break; fi
	done
fi
export HOPCACHE="${HOPCACHE:-$top/src/hopcache}"
exec /usr/bin/python3 "$top/tests/soak/soak.py" "$@"

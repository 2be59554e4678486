#!/usr/bin/env bash
# `make bench-runtime`: install the peers (once, into bench/.venvs/) and run the
# scoring runtime benchmark. Run it when the machine is otherwise quiet.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 1; }
"$ROOT/bench/runtime/setup-peers.sh"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$ROOT/.venv/bin/python" "$ROOT/bench/runtime/bench.py" "$@"

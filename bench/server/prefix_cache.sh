#!/usr/bin/env bash
# Prefix cache on agent traffic (issue #16): bench/server/agent_session.py replayed against
# `dsv4 serve` on the demo model, (1) without the prefix cache, (2) with it and a state-file
# directory, (3) after a restart on the same directory. Prints prefill tokens per request and
# the hit rate of each run.
# Usage: bench/server/prefix_cache.sh [dsv4 binary] [turns]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../tests/scripts/lib/live_server.sh
source tests/scripts/lib/live_server.sh
DSV4=${1:-build/dsv4}
TURNS=${2:-8}
WORK=$(mktemp -d)
PID=""
trap 'if [ -n "$PID" ]; then kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

run() {   # run <label> <serve flags...>
  local label=$1
  shift
  "$DSV4" serve --port 0 --skip-verify "$@" >"$WORK/$label.log" 2>&1 &
  PID=$!
  wait_for_serve_port "$WORK/$label.log" "$PID" prefix_cache
  python3 bench/server/agent_session.py --port "$PORT" --turns "$TURNS" --label "$label"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}

run no-cache --cache-bytes 0
run cache --kv-cache-dir "$WORK/kv"
echo "state files: $(find "$WORK/kv" -name '*.kv' | wc -l), $(du -sh "$WORK/kv" | cut -f1)"
run restarted --kv-cache-dir "$WORK/kv"

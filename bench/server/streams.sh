#!/usr/bin/env bash
# Decode throughput of `dsv4 serve` on the demo model with 1, 4 and 16 concurrent streams.
# Usage: bench/server/streams.sh [dsv4 binary] [max tokens per stream]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../tests/scripts/lib/live_server.sh
source tests/scripts/lib/live_server.sh
DSV4=${1:-build/dsv4}
MAX=${2:-64}
LOG=$(mktemp)
"$DSV4" serve --port 0 --skip-verify --max-running 16 >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
wait_for_serve_port "$LOG" "$PID" streams
node bench/server/streams.mjs "http://127.0.0.1:$PORT" 1 8 >/dev/null  # warm-up
for n in 1 4 16; do node bench/server/streams.mjs "http://127.0.0.1:$PORT" "$n" "$MAX"; done

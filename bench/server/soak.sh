#!/usr/bin/env bash
# Soak test of `dsv4 serve` on the demo model (issue #15): CLIENTS concurrent clients (default 64)
# keep streamed chat / messages / responses and plain or streamed completions requests going for
# SECONDS (default 600), ~10 % of the streams aborted mid-way; then checks that the server's
# running / queued gauges are back to 0, that no unexpected error occurred and that its RSS at the
# end exceeds the RSS after the warm-up by at most RSS_MARGIN_MIB (default 64). Exit status 1 when a
# check fails. See bench/server/soak_client.py for the details.
# Usage: bench/server/soak.sh [clients] [seconds] [dsv4 binary]
# Extra `dsv4 serve` flags can be given in SERVE_ARGS; extra client flags in CLIENT_ARGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../tests/scripts/lib/live_server.sh
source tests/scripts/lib/live_server.sh
CLIENTS=${1:-64}
SECONDS_=${2:-600}
DSV4=${3:-build/dsv4}
RSS_MARGIN_MIB=${RSS_MARGIN_MIB:-64}
MAX_RUNNING=16
# Every client must be admitted: the queue holds all that are not running, plus room for the
# sequences of aborted streams that the scheduler has not reaped yet when their client reconnects.
MAX_QUEUE=$((CLIENTS * 2))

WORK=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
printf 'soak-key-%s\n' "$$" >"$WORK/key"

# shellcheck disable=SC2086
OMP_WAIT_POLICY=passive "$DSV4" serve -m models/dsv4-demo --skip-verify --port 0 --ctx 2048 \
  --api-key-file "$WORK/key" --max-running "$MAX_RUNNING" --max-queue "$MAX_QUEUE" ${SERVE_ARGS:-} \
  >"$WORK/server.log" 2>&1 &
PID=$!
wait_for_serve_port "$WORK/server.log" "$PID" soak
echo "soak: dsv4 serve (pid $PID) on port $PORT, --max-running $MAX_RUNNING --max-queue $MAX_QUEUE ${SERVE_ARGS:-}"
sleep 2  # let the server settle before the starting RSS is read

status=0
# shellcheck disable=SC2086
python3 bench/server/soak_client.py --port "$PORT" --key-file "$WORK/key" --server-pid "$PID" \
  --clients "$CLIENTS" --duration "$SECONDS_" --rss-margin-mib "$RSS_MARGIN_MIB" ${CLIENT_ARGS:-} || status=$?
kill -0 "$PID" 2>/dev/null || { echo "soak: the server died"; status=1; }
[ $status -eq 0 ] || { echo "--- server log (tail)"; tail -20 "$WORK/server.log"; }
exit $status

#!/usr/bin/env bash
# `dsv4 run` and `dsv4 serve` on a DeepSeek-V4.1-shaped synthetic checkpoint (tiny-v41, random
# weights, the release's vocabulary so that text tokenizes): greedy output is garbage but the same
# every time, and the server answers a completion with it. Usage: v41_run_serve.sh <dsv4> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/live_server.sh"
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && { kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; }; rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive
fail() { echo "v41_run_serve: $*"; exit 1; }

"$DSV4" synth --preset tiny-v41 --layers 25 --experts 4 --engram-vocab 40 --vocab 129280 -o "$WORK/m" >/dev/null 2>&1 \
  || fail "synth failed"

"$DSV4" run -m "$WORK/m" --raw -p "def fibonacci(n):" -n 8 --temperature 0 >"$WORK/out1" 2>"$WORK/err1" \
  || { cat "$WORK/err1"; fail "run failed"; }
grep -q "generated 8 tokens" "$WORK/err1" || { cat "$WORK/err1"; fail "no generation stats"; }
"$DSV4" run -m "$WORK/m" --raw -p "def fibonacci(n):" -n 8 --temperature 0 >"$WORK/out2" 2>/dev/null
cmp -s "$WORK/out1" "$WORK/out2" || fail "greedy output differs between runs"
grep "generated" "$WORK/err1"

"$DSV4" serve -m "$WORK/m" --port 0 >"$WORK/server.log" 2>&1 &
PID=$!
wait_for_serve_port "$WORK/server.log" "$PID" v41_run_serve
body='{"model":"m","prompt":"def fibonacci(n):","max_tokens":6,"temperature":0}'
for i in 1 2; do
  curl -s -m 120 -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$PORT/v1/completions" >"$WORK/r$i" \
    || fail "request $i failed"
  grep -q '"text"' "$WORK/r$i" || { cat "$WORK/r$i"; fail "no completion text"; }
done
# The same greedy text both times (ids and timestamps differ).
text() { grep -o '"text":"[^"]*"' "$1"; }
[ "$(text "$WORK/r1")" = "$(text "$WORK/r2")" ] || fail "served greedy text differs"
echo "v41_run_serve: ok ($(text "$WORK/r1"))"

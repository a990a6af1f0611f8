#!/usr/bin/env bash
# `dsv4 serve --kv-cache-dir` keeps a conversation warm across a restart: the same chat request
# sent to a restarted server on the same directory reports cached_tokens > 0 and gives the same
# greedy answer; a corrupt state file is refused and removed, never trusted nor a crash.
# DSV4_LAUNCHER, if set, is put in front of `dsv4 serve` (mpi_kv_cache_dir.sh: the same under
# `mpirun -np 2`, where every rank resumes from rank 0's files).
# Usage: kv_cache_dir.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/live_server.sh"
WORK=$(mktemp -d)
PID=""
trap 'if [ -n "$PID" ]; then kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

launcher=()
[ -n "${DSV4_LAUNCHER:-}" ] && read -r -a launcher <<<"$DSV4_LAUNCHER"
serve() {
  "${launcher[@]}" "$DSV4" serve -m "$ROOT/models/dsv4-demo" --skip-verify --port 0 --kv-cache-dir "$WORK/kv" >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_for_serve_port "$WORK/server.log" "$PID" kv_cache_dir
}
stop() {
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}
BODY='{"model":"dsv4-demo","temperature":0,"max_tokens":12,"messages":[{"role":"system","content":"You write Python."},{"role":"user","content":"def fibonacci(n):"}]}'
ask() {   # prints "<cached_tokens> <the answer message as JSON>"
  curl -sf "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' -d "$BODY" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["usage"]["prompt_tokens_details"]["cached_tokens"], json.dumps(d["choices"][0]["message"]))'
}

serve
first=$(ask)
stop
files=$(find "$WORK/kv" -name '*.kv' | wc -l)
[ "$files" -ge 2 ] || { echo "kv_cache_dir: expected state files after the first server, found $files"; exit 1; }
# Corrupt the state the restarted server would resume from (the second deepest: the deepest
# holds the answer too): it must be refused, and the request resume from the one before it.
victim=$(find "$WORK/kv" -name '*.kv' -printf '%f\n' | sort -n | tail -2 | head -1)
printf 'garbage' | dd of="$WORK/kv/$victim" bs=1 seek=300 conv=notrunc 2>/dev/null

serve
second=$(ask)
stop
[ "${first#* }" = "${second#* }" ] || { echo "kv_cache_dir: answers differ: '$first' vs '$second'"; exit 1; }
cached=${second%% *}
[ "$cached" -gt 0 ] || { echo "kv_cache_dir: the restarted server reported cached_tokens $cached"; exit 1; }
[ "$cached" -lt "${victim%%-*}" ] || { echo "kv_cache_dir: resumed from the corrupt file $victim"; exit 1; }
# The refused file was removed, and written again when the request passed its prefix: a third
# server resumes from it.
serve
third=$(ask)
stop
[ "${first#* }" = "${third#* }" ] || { echo "kv_cache_dir: answers differ: '$first' vs '$third'"; exit 1; }
[ "${third%% *}" = "${victim%%-*}" ] || { echo "kv_cache_dir: the third server reported '$third'"; exit 1; }
echo "kv_cache_dir: ok ($files state files; after a restart $cached cached tokens past a corrupt file, then ${third%% *})"

#!/usr/bin/env bash
# Prefix cache on a real Claude Code session (issue #16): the `claude` CLI of tests/agents runs
# a multi-turn session (`claude -p`, then `claude -c -p` for each later turn, so every request
# resends the whole conversation with Claude Code's system prompt and tools) against
# `dsv4 serve` on the demo model, three ways:
#   no-cache   --cache-bytes 0, all turns
#   cache      --kv-cache-dir, the first half of the turns; the server is then restarted on the
#   restarted  same directory and the same conversation goes on for the second half.
# Per turn it prints the requests Claude Code made, their prompt tokens (audit log), the tokens
# read from the cache and those prefilled (Claude Code's own usage report: cache_read_input_tokens
# and input_tokens), and the wall time. Prints figures; asserts nothing.
# Usage: bench/server/claude_session.sh [dsv4 binary] [turns]   (default build/dsv4, 6)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DSV4=${1:-build/dsv4}
TURNS=${2:-6}
# shellcheck source=../../tests/scripts/lib/live_server.sh
source tests/scripts/lib/live_server.sh
AGENT="$ROOT/tests/agents/node_modules/.bin/claude"
[ -x "$AGENT" ] || { echo "claude_session: $AGENT is missing (run scripts/setup.sh)"; exit 1; }
WORK=$(mktemp -d)
PID=""
trap 'if [ -n "$PID" ]; then kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
KEY="bench-key-$$"
printf '%s\n' "$KEY" >"$WORK/key"

PROMPTS=(
  "Say hi"
  "What files are in this directory?"
  "Write a function that adds two numbers."
  "Now add a docstring to it."
  "Add type hints too."
  "Summarize what we did."
  "Write a test for it."
  "Rename the function to plus."
)

serve() {   # serve <label> <serve flags...>: starts the server, sets PORT and PID
  local label=$1
  shift
  DSV4_CACHE_DIR="$WORK/verify-cache" OMP_WAIT_POLICY=passive "$DSV4" serve -m models/dsv4-demo --port 0 \
    --ctx 16384 --api-key-file "$WORK/key" --audit-log "$WORK/$label.audit.jsonl" --stop $'\n' "$@" \
    >"$WORK/$label.log" 2>&1 &
  PID=$!
  wait_for_serve_port "$WORK/$label.log" "$PID" claude_session
}

stop_server() {
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}

# turn <label> <home> <index>: one `claude -p` turn (continuing the home's last conversation
# after the first) and its figures.
turn() {
  local label=$1 home=$2 i=$3 cont=()
  [ "$i" -gt 0 ] && cont=(-c)
  local before
  before=$(wc -l <"$WORK/$label.audit.jsonl" 2>/dev/null || echo 0)
  local t0
  t0=$(date +%s.%N)
  (cd "$home/project" && HOME="$home" CLAUDE_CONFIG_DIR="$home/.claude" \
    ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT" ANTHROPIC_API_KEY="$KEY" \
    DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    timeout 600 "$AGENT" "${cont[@]}" -p "${PROMPTS[$((i % ${#PROMPTS[@]}))]}" --model dsv4-demo --tools Read,Bash \
    --output-format json </dev/null) >"$WORK/result.json" 2>"$WORK/claude.err" ||
    { echo "claude_session: claude failed on turn $((i + 1)) ($label)"; cat "$WORK/result.json" "$WORK/claude.err"; exit 1; }
  local t1
  t1=$(date +%s.%N)
  node -e '
    const fs = require("fs");
    const [result, audit, before, label, turn, secs] = process.argv.slice(1);
    const r = JSON.parse(fs.readFileSync(result, "utf8"));
    const rows = fs.readFileSync(audit, "utf8").trim().split("\n").slice(Number(before)).map(JSON.parse);
    const u = r.usage || {};
    const cached = u.cache_read_input_tokens || 0, prefilled = u.input_tokens || 0;
    const prompts = rows.map((l) => l.prompt_tokens).join("+");
    console.log(`${label.padEnd(9)} ${String(turn).padStart(4)} ${String(rows.length).padStart(8)} ` +
                `${prompts.padStart(12)} ${String(cached).padStart(7)} ${String(prefilled).padStart(9)} ` +
                `${(100 * cached / Math.max(1, cached + prefilled)).toFixed(1).padStart(6)}% ${Number(secs).toFixed(1).padStart(7)}`);
  ' "$WORK/result.json" "$WORK/$label.audit.jsonl" "$before" "$label" "$((i + 1))" "$(echo "$t1 - $t0" | bc)"
}

new_home() {
  local home="$WORK/home-$1"
  mkdir -p "$home/project"
  echo "$home"
}

echo "claude_session: $("$AGENT" --version 2>/dev/null) against $DSV4 on models/dsv4-demo, $TURNS turns"
echo "run       turn requests prompt tokens  cached prefilled   hit  seconds"
HALF=$((TURNS / 2))

home=$(new_home nocache)
serve no-cache --cache-bytes 0
for ((i = 0; i < TURNS; i++)); do turn no-cache "$home" $i; done
stop_server

home=$(new_home cache)
serve cache --kv-cache-dir "$WORK/kv"
for ((i = 0; i < HALF; i++)); do turn cache "$home" $i; done
stop_server
echo "state files after the first half: $(find "$WORK/kv" -name '*.kv' | wc -l), $(du -sh "$WORK/kv" | cut -f1); server restarted"
serve restarted --kv-cache-dir "$WORK/kv"
# The restarted server's audit log is its own file; the turn numbers continue the conversation.
for ((i = HALF; i < TURNS; i++)); do turn restarted "$home" $i; done
stop_server

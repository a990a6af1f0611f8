#!/usr/bin/env bash
# Claude Code (`claude -p`, tests/agents) completes a turn against a live `dsv4 serve` on the demo
# model through /v1/messages: it exits 0 with a successful result, and every request it made got
# a 2xx (lib/agent_cli.sh). Offline: no telemetry, error reports, auto-update or other
# non-essential traffic. Two tools (Read, Bash) instead of the default set keep the prompt near
# 4.7k tokens instead of 15k: prefilling that takes most of a minute on a small CI machine.
# Usage: agent_claude.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/agent_cli.sh"
require_agent "$ROOT" claude agent_claude
start_agent_server "$DSV4" "$ROOT" agent_claude

status=0
(cd "$PROJECT" && HOME="$AGENT_HOME" CLAUDE_CONFIG_DIR="$AGENT_HOME/.claude" \
  ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT" ANTHROPIC_API_KEY="$KEY" \
  DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  timeout 240 "$AGENT" -p "Say hi" --model dsv4-demo --tools Read,Bash --output-format json </dev/null) \
  >"$WORK/result.json" 2>"$WORK/claude.log" || status=$?
if [ $status -ne 0 ]; then
  echo "agent_claude: claude exited $status"; cat "$WORK/result.json" "$WORK/claude.log"
else
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (r.type !== "result" || r.subtype !== "success" || r.is_error) { console.error("agent_claude: not a successful turn:", r); process.exit(1); }
  ' "$WORK/result.json" || status=1
fi
check_agent_requests agent_claude /v1/messages 1 || status=1
[ $status -eq 0 ] || { echo "--- server log"; tail -20 "$WORK/server.log"; }
exit $status

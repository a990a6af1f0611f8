#!/usr/bin/env bash
# opencode (`opencode run`, tests/agents) completes a turn against a live `dsv4 serve` on the
# demo model through /v1/chat/completions, as a custom OpenAI-compatible provider (the README's
# configuration), offline: no auto-update, sharing, models.dev fetch or external plugins. It
# exits 0 with a finished step and no error event, and every request it made got a 2xx
# (lib/agent_cli.sh). Two tools (read, bash) instead of the default set keep the prompt near
# 4.9k tokens instead of 9.2k. (An answer cut at max_tokens is not an error to opencode: it
# ends the step with reason "length".)
# Usage: agent_opencode.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/agent_cli.sh"
require_agent "$ROOT" opencode agent_opencode
start_agent_server "$DSV4" "$ROOT" agent_opencode

cat >"$WORK/opencode.json" <<JSON
{
  "\$schema": "https://opencode.ai/config.json",
  "autoupdate": false,
  "share": "disabled",
  "model": "dsv4/dsv4-demo",
  "provider": {
    "dsv4": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "dsv4 serve",
      "options": { "baseURL": "http://127.0.0.1:$PORT/v1", "apiKey": "{env:DSV4_API_KEY}" },
      "models": { "dsv4-demo": { "name": "dsv4 demo" } }
    }
  },
  "tools": { "*": false, "read": true, "bash": true }
}
JSON

status=0
(cd "$PROJECT" && HOME="$AGENT_HOME" XDG_CONFIG_HOME="$AGENT_HOME/.config" XDG_DATA_HOME="$AGENT_HOME/.local/share" \
  XDG_CACHE_HOME="$AGENT_HOME/.cache" XDG_STATE_HOME="$AGENT_HOME/.local/state" OPENCODE_CONFIG="$WORK/opencode.json" \
  OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1 DSV4_API_KEY="$KEY" \
  timeout 240 "$AGENT" run --pure --format json "Say hi" </dev/null) >"$WORK/events.jsonl" 2>"$WORK/opencode.log" || status=$?
if [ $status -ne 0 ]; then
  echo "agent_opencode: opencode exited $status"; cat "$WORK/events.jsonl" "$WORK/opencode.log"
elif ! grep -q '"type":"step_finish"' "$WORK/events.jsonl" || grep -q '"type":"error"' "$WORK/events.jsonl"; then
  echo "agent_opencode: no finished step, or an error event"; cat "$WORK/events.jsonl" "$WORK/opencode.log"; status=1
fi
check_agent_requests agent_opencode /v1/chat/completions 1 || status=1
[ $status -eq 0 ] || { echo "--- server log"; tail -20 "$WORK/server.log"; }
exit $status

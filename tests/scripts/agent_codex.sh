#!/usr/bin/env bash
# Codex CLI (`codex exec`, tests/agents) completes a turn against a live `dsv4 serve` on the
# demo model through the Responses API, configured as the README says (a custom provider, web
# search off), offline: no analytics, feedback or update check (`--strict-config` refuses a key
# this Codex does not know). It exits 0 with turn.completed, and every request it made got a
# 2xx (lib/agent_cli.sh). Its prompt (instructions and tools) is about 11.6k tokens.
# Usage: agent_codex.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
. "$ROOT/tests/scripts/lib/agent_cli.sh"
require_agent "$ROOT" codex agent_codex
start_agent_server "$DSV4" "$ROOT" agent_codex

mkdir -p "$WORK/codex"
cat >"$WORK/codex/config.toml" <<TOML
model = "dsv4-demo"
model_provider = "dsv4"
web_search = "disabled"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.dsv4]
name = "dsv4 serve"
base_url = "http://127.0.0.1:$PORT/v1"
wire_api = "responses"
env_key = "DSV4_API_KEY"
TOML

status=0
HOME="$AGENT_HOME" CODEX_HOME="$WORK/codex" DSV4_API_KEY="$KEY" \
  timeout 240 "$AGENT" exec --strict-config --skip-git-repo-check --json -C "$PROJECT" "Say hi" </dev/null \
  >"$WORK/events.jsonl" 2>"$WORK/codex.log" || status=$?
if [ $status -ne 0 ]; then
  echo "agent_codex: codex exited $status"; cat "$WORK/events.jsonl" "$WORK/codex.log"
elif ! grep -q '"type":"turn.completed"' "$WORK/events.jsonl"; then
  echo "agent_codex: no completed turn"; cat "$WORK/events.jsonl"; status=1
fi
check_agent_requests agent_codex /v1/responses 1 || status=1
[ $status -eq 0 ] || { echo "--- server log"; tail -20 "$WORK/server.log"; }
exit $status

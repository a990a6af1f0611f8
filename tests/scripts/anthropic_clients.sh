#!/usr/bin/env bash
# Runs the official Anthropic Node SDK (tests/clients) against a live `dsv4 serve` on the demo
# model: /v1/messages plain and streamed, system prompts, thinking on/off, tool use round trip
# and tool_choice, count_tokens, auth (x-api-key and Bearer), bad input, and a non-streaming
# client that hangs up. Usage: anthropic_clients.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
CLIENTS="$ROOT/tests/clients"
. "$ROOT/tests/scripts/lib/live_server.sh"
require_sdk "$ROOT" @anthropic-ai/sdk anthropic_clients
start_live_server "$DSV4" "$ROOT" anthropic_clients key-file
if grep -q "warning: --api-key" "$WORK/server.log"; then echo "anthropic_clients: --api-key-file was warned about"; exit 1; fi

status=0
DSV4_ROOT_URL="http://127.0.0.1:$PORT" DSV4_API_KEY="$KEY" \
  timeout 300 node --test --test-concurrency=1 "$CLIENTS/anthropic_clients.test.mjs" || status=$?

# /v1/messages requests are audited like the OpenAI ones (refused keys as 401 without a key id);
# the client that hung up as 499.
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const messages = lines.filter((l) => l.endpoint === "/v1/messages");
  if (messages.length < 10 || !messages.every((l) => l.client && (l.status === 401 ? l.key_id === null : l.key_id))) { console.error("anthropic_clients: unexpected audit log", messages.length); process.exit(1); }
  if (!messages.some((l) => l.status === 499 && l.finish_reason === "cancelled" && l.generated_tokens < 1000)) { console.error("anthropic_clients: the abandoned request was not audited as cancelled"); process.exit(1); }
' "$WORK/audit.jsonl" || status=1
[ $status -eq 0 ] || { echo "--- server log"; tail -20 "$WORK/server.log"; }
exit $status

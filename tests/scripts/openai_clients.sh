#!/usr/bin/env bash
# Runs the official OpenAI Node SDK (tests/clients) against a live `dsv4 serve` on the demo
# model: models, chat (plain and streamed), completions, tools, auth, bad input, 16 concurrent
# streams, disconnect; then the Responses API (plain and streamed, a function-tool round trip by
# previous_response_id and by items, refusals, disconnect).
# Usage: openai_clients.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
CLIENTS="$ROOT/tests/clients"
. "$ROOT/tests/scripts/lib/live_server.sh"
require_sdk "$ROOT" openai openai_clients
start_live_server "$DSV4" "$ROOT" openai_clients

status=0
# A key on the command line is warned about and hidden from the process list once parsed.
grep -q "warning: --api-key puts the key on the command line" "$WORK/server.log" ||
  { echo "openai_clients: no warning about --api-key"; status=1; }
if tr '\0' ' ' <"/proc/$SERVER_PID/cmdline" | grep -q "$KEY"; then
  echo "openai_clients: the API key is visible in the process list"; status=1
fi
DSV4_BASE_URL="http://127.0.0.1:$PORT/v1" DSV4_API_KEY="$KEY" \
  timeout 300 node --test --test-concurrency=1 "$CLIENTS/openai_clients.test.mjs" "$CLIENTS/openai_responses.test.mjs" ||
  status=$?

# The audit log has one line per generation request, with a hashed key id and no key, and one
# per refused authentication (no key id); every line names the client.
if [ -s "$WORK/audit.jsonl" ]; then
  if grep -q "$KEY" "$WORK/audit.jsonl"; then echo "openai_clients: the audit log contains the API key"; status=1; fi
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const ok = lines.every((l) => l.time && /^127\.0\.0\.1:\d+$/.test(l.client) && (l.status === 401 ? l.key_id === null : l.key_id) &&
                                  typeof l.prompt_tokens === "number" && typeof l.latency_ms === "number" && !("prompt" in l));
    const refused = lines.filter((l) => l.status === 401).length;
    if (!ok || lines.length - refused < 20 || refused < 1) { console.error("openai_clients: unexpected audit log", lines.length, refused); process.exit(1); }
  ' "$WORK/audit.jsonl" || status=1
else
  echo "openai_clients: the audit log is empty"; status=1
fi
[ $status -eq 0 ] || { echo "--- server log"; tail -20 "$WORK/server.log"; }
exit $status

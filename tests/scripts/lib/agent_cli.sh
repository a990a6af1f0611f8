# Sourced by the coding-agent tests (agent_codex.sh, agent_claude.sh, agent_opencode.sh): one
# real agent CLI, installed by scripts/setup.sh from tests/agents/package-lock.json, completes a
# turn against `dsv4 serve` on the demo model. What is checked is the protocol, not the answer.
#   require_agent <repo root> <command> <name>
# sets AGENT to the installed command; exits 77 (ctest: skipped) when node or the package is
# missing.
#   start_agent_server <dsv4 binary> <repo root> <name>
# the live server of live_server.sh (API key from a file, audit log) with room for an agent's
# prompt (tools and instructions: 5k-12k tokens) and `--stop "\n"`: the demo model, trained on
# Python source only, never writes EOS, and an answer cut by max_tokens is an error to every
# agent (Codex: "incomplete response", Claude Code: "exceeded the output token maximum"), so
# its answer ends at its first line, as an operator would configure such a model. Sets WORK,
# PORT, KEY (live_server.sh) and AGENT_HOME, PROJECT: an empty home and working directory, so
# that no configuration, session or cache of the machine's user is read or written.
#   check_agent_requests <name> <endpoint> <minimum requests>
# every request the server answered (/metrics) got a 2xx, and the generation requests (the
# audit log) were at least <minimum>, all on <endpoint> and ended by a stop; prints each one.

require_agent() {
  local root=$1 command=$2 name=$3
  command -v node >/dev/null || { echo "$name: node is not installed (run scripts/setup.sh): skipped"; exit 77; }
  AGENT="$root/tests/agents/node_modules/.bin/$command"
  [ -x "$AGENT" ] || { echo "$name: tests/agents/node_modules has no $command (run scripts/setup.sh): skipped"; exit 77; }
}

start_agent_server() {
  local dsv4=$1 root=$2 name=$3
  . "$root/tests/scripts/lib/live_server.sh"
  LIVE_SERVER_CTX=16384
  LIVE_SERVER_FLAGS=(--stop $'\n')
  start_live_server "$dsv4" "$root" "$name" key-file
  AGENT_HOME="$WORK/home"
  PROJECT="$WORK/project"
  mkdir -p "$AGENT_HOME" "$PROJECT"
}

check_agent_requests() {
  local name=$1 endpoint=$2 minimum=$3
  DSV4_METRICS_URL="http://127.0.0.1:$PORT/metrics" DSV4_API_KEY="$KEY" node -e '
    const [file, endpoint, minimum, name] = process.argv.slice(1);
    const fail = (why) => { console.error(`${name}: ${why}`); process.exit(1); };
    const lines = require("fs").readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
    for (const l of lines)
      console.log(`${name}: ${l.endpoint} ${l.status} ${l.finish_reason}: ${l.prompt_tokens} prompt tokens, ${l.generated_tokens} generated, ${Math.round(l.latency_ms)} ms`);
    if (lines.length < Number(minimum)) fail(`${lines.length} generation requests, expected at least ${minimum}`);
    if (lines.some((l) => l.endpoint !== endpoint || l.status !== 200 || l.finish_reason !== "stop"))
      fail(`every generation request must go to ${endpoint}, be answered 200 and end by a stop`);
    fetch(process.env.DSV4_METRICS_URL, { headers: { authorization: `Bearer ${process.env.DSV4_API_KEY}` } })
      .then((r) => r.text())
      .then((text) => {
        const counts = text.split("\n").filter((l) => l.startsWith("dsv4_requests_total{"));
        if (!counts.length) fail("/metrics counts no requests");
        const refused = counts.filter((l) => !/status="2\d\d"/.test(l));
        if (refused.length) fail(`requests not answered with 2xx:\n${refused.join("\n")}`);
      });
  ' "$WORK/audit.jsonl" "$endpoint" "$minimum" "$name"
}

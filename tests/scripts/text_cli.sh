#!/usr/bin/env bash
# Runs `dsv4 tokenize / render / parse-completion` on JSON Lines with malformed lines mixed in:
# every line gets exactly one output line, bad lines an {"error"}, and the exit status is 1.
# Args: <dsv4 binary> <repo root>
set -uo pipefail
DSV4=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(printf '%s\n' '{"text": "Hello world"}' 'not json' '{"text": 5}' '{"text": "1234567"}' | "$DSV4" tokenize 2>/dev/null)
rc=$?
[ "$rc" = 1 ] || fail "tokenize exit status $rc, want 1"
expected=$'{"ids":[19923,2058]}\n{"error":"invalid_argument: line is not valid JSON"}\n{"error":"invalid_argument: missing string \\"text\\""}\n{"ids":[6895,18009,25]}'
[ "$out" = "$expected" ] || fail "tokenize output: $out"

out=$(printf '%s\n' '{"text": "ok"}' | "$DSV4" tokenize)
[ $? = 0 ] || fail "tokenize of good input must exit 0"

out=$(printf '%s\n' '{"ids": [19923, 2058]}' '{"ids": [-1]}' '{"ids": [6895]}' | "$DSV4" tokenize --decode 2>/dev/null)
[ $? = 1 ] || fail "decode exit status"
[ "$(echo "$out" | sed -n 1p)" = '{"text":"Hello world"}' ] || fail "decode line 1: $out"
echo "$out" | sed -n 2p | grep -q '"error"' || fail "decode line 2 should be an error: $out"
[ "$(echo "$out" | sed -n 3p)" = '{"text":"123"}' ] || fail "decode line 3: $out"

out=$(printf '%s\n' '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "options": {"thinking_mode": "thinking"}}' \
  '{"messages": [{"role": "wizard", "content": "x"}]}' \
  '{"messages": [{"role": "user", "content": "Hi"}], "options": {"thinking_mode": "chat"}}' | "$DSV4" render 2>/dev/null)
[ $? = 1 ] || fail "render exit status"
[ "$(echo "$out" | sed -n 1p)" = '{"prompt":"<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>"}' ] || fail "render line 1: $out"
echo "$out" | sed -n 2p | grep -q "unknown role" || fail "render line 2: $out"
[ "$(echo "$out" | sed -n 3p)" = '{"prompt":"<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>"}' ] || fail "render line 3: $out"

out=$(printf '%s\n' '{"completion": "why</think>Paris<｜end▁of▁sentence｜>", "thinking_mode": "thinking"}' \
  '{"completion": "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"n\" string=\"false\">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>", "thinking_mode": "chat"}' \
  '{"completion": "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke", "thinking_mode": "chat"}' \
  '{"thinking_mode": "chat"}' | "$DSV4" parse-completion 2>/dev/null)
[ $? = 1 ] || fail "parse-completion exit status"
[ "$(echo "$out" | sed -n 1p)" = '{"role":"assistant","content":"Paris","reasoning_content":"why","tool_calls":[],"finished":true}' ] || fail "parse line 1: $out"
[ "$(echo "$out" | sed -n 2p)" = '{"role":"assistant","content":"","reasoning_content":"","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{\"n\": 3}"}}],"finished":true}' ] || fail "parse line 2: $out"
echo "$out" | sed -n 3p | grep -q '"malformed":true' || fail "parse line 3 should be flagged malformed: $out"
echo "$out" | sed -n 4p | grep -q '"error"' || fail "parse line 4: $out"
echo "text CLI OK"

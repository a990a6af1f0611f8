#!/usr/bin/env bash
# Builds fuzz/request_fuzz.cpp with clang++ and libFuzzer + ASan + UBSan, seeds a corpus with
# OpenAI and Anthropic request bodies (tools, tool calls, thinking, content blocks, sampling
# fields, structured outputs with JSON schemas) and the shared chat-encoding inputs, and fuzzes the HTTP API's request parsers for
# FUZZ_SECONDS (default 20). Fails on any crash, sanitizer report, leak, uncaught exception or
# a 5xx error for a client's body; a reproducer is copied to fuzz/artifacts/.
# Usage: fuzz_requests.sh <dsv4 binary> <repo root>   (as registered by CMake)
set -euo pipefail
DSV4_BIN=${1:?usage: fuzz_requests.sh <dsv4 binary> <repo root>}
ROOT=$(cd "${2:?usage: fuzz_requests.sh <dsv4 binary> <repo root>}" && pwd)
. "$ROOT/tests/scripts/lib/libfuzzer.sh"
start_fuzz fuzz_requests "$DSV4_BIN" "$ROOT" \
  fuzz/request_fuzz.cpp \
  src/server/api.cpp \
  src/server/openai.cpp \
  src/server/anthropic.cpp \
  src/server/json_fields.cpp \
  src/server/errors.cpp \
  src/server/sse.cpp \
  src/server/structured_output.cpp \
  src/runtime/sampler.cpp \
  src/text/encoder_revision.cpp \
  src/text/py_json.cpp \
  src/text/tool_definition.cpp \
  src/text/json_schema.cpp \
  src/text/json_matcher.cpp \
  src/text/dsml_matcher.cpp \
  src/core/status.cpp

seed() { printf '%s' "$2" >"$CORPUS/$1"; }
seed chat '{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.7,"top_p":0.9,"max_tokens":16,"stop":["\n\n"],"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":2,"reasoning_effort":"high"}'
seed chat_tools '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"weather?"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"cold"}],"tools":[{"type":"function","function":{"name":"get","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":{"type":"function","function":{"name":"get"}},"thinking":{"type":"disabled"}}'
seed messages '{"model":"m","max_tokens":32,"system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":""},{"type":"text","text":"yo"}]},{"role":"user","content":"more"}],"thinking":{"type":"enabled","budget_tokens":1024},"stop_sequences":["END"],"temperature":1,"top_k":40,"stream":true}'
seed messages_tools '{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"w?"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"get","input":{"city":"Oslo"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"cold"}]}]}],"tools":[{"name":"get","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"tool","name":"get"},"output_config":{"effort":"max"}}'
seed chat_strict_tool '{"model":"m","messages":[{"role":"user","content":"w?"}],"tools":[{"type":"function","function":{"name":"get","strict":true,"parameters":{"type":"object","properties":{"city":{"type":"string"},"n":{"type":["integer","null"]}},"required":["city"],"additionalProperties":false}}}],"tool_choice":"required"}'
seed chat_schema '{"model":"m","messages":[{"role":"user","content":"json"}],"response_format":{"type":"json_schema","json_schema":{"name":"t","strict":true,"schema":{"type":"object","properties":{"a":{"type":["string","null"]},"b":{"type":"array","items":{"$ref":"#/$defs/n"},"minItems":1,"maxItems":3},"c":{"enum":[1,"x",null]},"d":{"anyOf":[{"const":true},{"type":"integer"}]}},"required":["a","b"],"additionalProperties":false,"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}}}}}}'
seed messages_schema '{"model":"m","max_tokens":32,"messages":[{"role":"user","content":"json"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object","additionalProperties":{"type":"number"}}}}}'
seed completion '{"model":"m","prompt":"def f(","max_tokens":8,"echo":true,"logprobs":2,"stop":"\n","seed":3}'
seed completion_ids '{"model":"m","prompt":[1,2,3],"max_tokens":4,"ignore_eos":true,"stop_token_ids":[7]}'
n=0
for f in "$ROOT/../shared/data/dsv4-tokenizer/encoding-tests"/test_input_*.json; do
  [ -f "$f" ] || continue
  cp "$f" "$CORPUS/encoding_$n.json"
  n=$((n + 1))
done
run_fuzz fuzz_requests 65536

#!/usr/bin/env bash
# `dsv4 run` and `dsv4 chat` on the demo model: streamed output and stats, seeds, chat state
# reuse, bad flags, and refusing a model directory whose files changed since verification.
# Usage: cli_generate.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
DEMO="$ROOT/models/dsv4-demo"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive
fail() { echo "cli_generate: $*"; exit 1; }

# run: greedy raw completion streams text, then the stats line.
"$DSV4" run -m "$DEMO" --raw -p "def fibonacci(n):" -n 8 --temperature 0 >"$WORK/out1" 2>"$WORK/err1" || { cat "$WORK/err1"; fail "run failed"; }
[ -s "$WORK/out1" ] || fail "run printed nothing"
grep -q "generated 8 tokens" "$WORK/err1" || { cat "$WORK/err1"; fail "no generation stats"; }
grep -q "prompt [0-9]* tokens" "$WORK/err1" || fail "no prompt stats"
# Greedy is deterministic.
"$DSV4" run -m "$DEMO" --raw -p "def fibonacci(n):" -n 8 --temperature 0 >"$WORK/out2" 2>/dev/null
cmp -s "$WORK/out1" "$WORK/out2" || fail "greedy output differs between runs"
# Same seed, same sample; the chat template path (thinking by default) works too.
"$DSV4" run -m "$DEMO" -p "class Stack:" -n 12 --seed 7 --top-k 40 >"$WORK/s1" 2>/dev/null
"$DSV4" run -m "$DEMO" -p "class Stack:" -n 12 --seed 7 --top-k 40 >"$WORK/s2" 2>/dev/null
cmp -s "$WORK/s1" "$WORK/s2" || fail "the same seed gave different samples"
# Bad sampling values are refused with a message, not a crash.
if "$DSV4" run -m "$DEMO" -p "x" --temperature 9 >/dev/null 2>"$WORK/err3"; then fail "temperature 9 accepted"; fi
grep -q "temperature" "$WORK/err3" || fail "no message for a bad temperature"

# chat: the second turn continues the first one's sequence.
printf 'def add(a, b):\n/nothink\nclass Stack:\n/quit\n' | "$DSV4" chat -m "$DEMO" -n 6 --temperature 0 >"$WORK/chat" 2>"$WORK/chat_err" \
  || { cat "$WORK/chat_err"; fail "chat failed"; }
[ "$(grep -c 'generated 6 tokens' "$WORK/chat_err")" = 2 ] || { cat "$WORK/chat_err"; fail "chat did not answer twice"; }
grep -q "reused" "$WORK/chat_err" || { cat "$WORK/chat_err"; fail "the second turn re-prefilled the history"; }

# Integrity: a changed file is refused unless --skip-verify.
cp -r "$DEMO" "$WORK/model"
"$DSV4" run -m "$WORK/model" --raw -p "x" -n 1 >/dev/null 2>&1 || fail "a pristine copy was refused"
size=$(stat -c %s "$WORK/model/model-00003-of-00003.safetensors")
printf '\x55' | dd of="$WORK/model/model-00003-of-00003.safetensors" bs=1 seek=$((size - 3)) conv=notrunc status=none
if "$DSV4" run -m "$WORK/model" --raw -p "x" -n 1 >/dev/null 2>"$WORK/err4"; then fail "a modified model was accepted"; fi
grep -qi "model-00003" "$WORK/err4" || { cat "$WORK/err4"; fail "the refusal does not name the changed file"; }
"$DSV4" run -m "$WORK/model" --raw -p "x" -n 1 --skip-verify >/dev/null 2>&1 || fail "--skip-verify did not skip"
if "$DSV4" serve -m "$WORK/model" --port 0 >/dev/null 2>"$WORK/err5"; then fail "serve accepted a modified model"; fi
grep -qi "model-00003" "$WORK/err5" || { cat "$WORK/err5"; fail "serve's refusal does not name the changed file"; }
echo "cli_generate: ok"

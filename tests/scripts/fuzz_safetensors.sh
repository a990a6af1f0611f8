#!/usr/bin/env bash
# Builds fuzz/safetensors_fuzz.cpp with clang++ and libFuzzer + ASan + UBSan, seeds a corpus from
# the shared fixture's shard headers and config.json, and fuzzes parse_safetensors/parse_config
# for FUZZ_SECONDS (default 20). Fails on any crash, sanitizer report or leak; a reproducer is
# copied to fuzz/artifacts/. The first run compiles (~30 s on 2 idle cores); later runs reuse
# the objects in <build>/fuzz-build and take ~22 s.
# Usage: fuzz_safetensors.sh <dsv4 binary> <repo root>   (as registered by CMake)
set -euo pipefail
DSV4_BIN=${1:?usage: fuzz_safetensors.sh <dsv4 binary> <repo root>}
ROOT=$(cd "${2:?usage: fuzz_safetensors.sh <dsv4 binary> <repo root>}" && pwd)
SECONDS_TO_RUN=${FUZZ_SECONDS:-20}
CXX=${FUZZ_CXX:-clang++}

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz_safetensors: SKIP: $CXX not found (install clang to run the fuzzer)"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsv4_fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Objects live next to the dsv4 build so reruns only recompile what changed (make + -MMD).
OBJ="$(cd "$(dirname "$DSV4_BIN")" && pwd)/fuzz-build"
mkdir -p "$OBJ"
BIN="$OBJ/safetensors_fuzz"

SOURCES=(
  fuzz/safetensors_fuzz.cpp
  src/io/safetensors.cpp
  src/io/config.cpp
  src/io/mapped_file.cpp
  src/core/dtype.cpp
  src/core/huge_pages.cpp
  src/core/status.cpp
)
FLAGS="-std=c++20 -O1 -gline-tables-only -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
{
  echo "CXX := $CXX"
  echo "FLAGS := $FLAGS"
  objs=""
  for s in "${SOURCES[@]}"; do
    o="$OBJ/$(echo "$s" | tr / _).o"
    objs="$objs $o"
    printf '%s: %s\n\t$(CXX) $(FLAGS) -MMD -MP -I%s -c $< -o $@\n' "$o" "$ROOT/$s" "$ROOT/src"
    echo "-include ${o%.o}.d"
  done
  printf '%s:%s\n\t$(CXX) $(FLAGS) $^ -o $@ -lpthread\n' "$BIN" "$objs"
} > "$OBJ/Makefile.new"
# Keep the old Makefile (and its timestamps) when nothing changed.
if cmp -s "$OBJ/Makefile.new" "$OBJ/Makefile"; then rm -f "$OBJ/Makefile.new"; else mv "$OBJ/Makefile.new" "$OBJ/Makefile"; rm -f "$OBJ"/*.o; fi
start=$(date +%s)
make -s -f "$OBJ/Makefile" -j2 "$BIN"
echo "fuzz_safetensors: fuzzer up to date after $(( $(date +%s) - start )) s"

# Seed corpus: each fixture shard's header plus the first bytes of its data (full shards are
# megabytes; libFuzzer works best on small inputs), a whole tiny file, and config.json
# wrapped as a header.
CORPUS="$WORK/corpus"
mkdir -p "$CORPUS"
FIX="$ROOT/../shared/fixtures"
[ -d "$FIX" ] || FIX="$(dirname "$ROOT")/shared/fixtures"
n=0
for shard in "$FIX"/*/checkpoint/*.safetensors; do
  [ -f "$shard" ] || continue
  hlen=$(od -An -t u8 -N 8 "$shard" | tr -d ' ')
  head -c $(( 8 + hlen + 64 )) "$shard" > "$CORPUS/shard_$n"
  n=$((n + 1))
done
for cfg in "$FIX"/*/checkpoint/config.json; do
  [ -f "$cfg" ] || continue
  len=$(stat -c %s "$cfg")
  { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((len & 255)) $((len >> 8 & 255)) \
      $((len >> 16 & 255)) $((len >> 24 & 255)))"; cat "$cfg"; } > "$CORPUS/config_$n"
  n=$((n + 1))
done
hdr='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[1,3],"data_offsets":[8,11]}}'
{ printf "$(printf '\\x%02x\\x00\\x00\\x00\\x00\\x00\\x00\\x00' ${#hdr})"; printf '%s' "$hdr"; printf 'abcdefghijk'; } > "$CORPUS/small"
echo "fuzz_safetensors: $(ls "$CORPUS" | wc -l) seed inputs; fuzzing for ${SECONDS_TO_RUN} s"

cd "$WORK"
if ! "$BIN" "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$WORK/" > "$WORK/fuzz.log" 2>&1; then
  tail -n 60 "$WORK/fuzz.log"
  for a in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
    [ -f "$a" ] || continue
    mkdir -p "$ROOT/fuzz/artifacts"
    cp "$a" "$ROOT/fuzz/artifacts/"
    echo "fuzz_safetensors: reproducer saved to fuzz/artifacts/$(basename "$a")"
  done
  echo "fuzz_safetensors: FAILED"
  exit 1
fi
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/fuzz.log" || true
echo "fuzz_safetensors: OK, no crash in ${SECONDS_TO_RUN} s (total $(( $(date +%s) - start )) s)"

#!/usr/bin/env bash
# Builds fuzz/safetensors_fuzz.cpp with clang++ and libFuzzer + ASan + UBSan, seeds a corpus from
# the shared fixture's shard headers and config.json, and fuzzes parse_safetensors/parse_config
# for FUZZ_SECONDS (default 20). Fails on any crash, sanitizer report or leak; a reproducer is
# copied to fuzz/artifacts/. The first run compiles (~30 s on 2 idle cores); later runs reuse
# the objects in <build>/fuzz-build/fuzz_safetensors and take ~22 s.
# Usage: fuzz_safetensors.sh <dsv4 binary> <repo root>   (as registered by CMake)
set -euo pipefail
DSV4_BIN=${1:?usage: fuzz_safetensors.sh <dsv4 binary> <repo root>}
ROOT=$(cd "${2:?usage: fuzz_safetensors.sh <dsv4 binary> <repo root>}" && pwd)
. "$ROOT/tests/scripts/lib/libfuzzer.sh"
start_fuzz fuzz_safetensors "$DSV4_BIN" "$ROOT" \
  fuzz/safetensors_fuzz.cpp \
  src/io/safetensors.cpp \
  src/io/config.cpp \
  src/io/config_json.cpp \
  src/io/config_v41.cpp \
  src/io/engram_primes.cpp \
  src/io/mapped_file.cpp \
  src/core/dtype.cpp \
  src/core/huge_pages.cpp \
  src/core/status.cpp

# Seed corpus: each fixture shard's header plus the first bytes of its data (full shards are
# megabytes; libFuzzer works best on small inputs), a whole tiny file, and config.json
# wrapped as a header.
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
run_fuzz fuzz_safetensors 65536

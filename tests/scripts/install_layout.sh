#!/usr/bin/env bash
# `cmake --install` puts the binary and its data (tokenizer, demo model) under a prefix, and the
# installed binary works from anywhere once the prefix is moved: it finds its data relative to
# itself, not through a path compiled in.
# Usage: install_layout.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
BUILD=$(dirname "$DSV4")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive
unset DSV4_DATA_DIR
fail() { echo "install_layout: $*"; exit 1; }

cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null || fail "cmake --install failed"
[ -x "$WORK/prefix/bin/dsv4" ] || fail "no bin/dsv4 under the prefix"
[ -f "$WORK/prefix/share/dsv4/tokenizer/tokenizer.json" ] || fail "no share/dsv4/tokenizer"
[ -f "$WORK/prefix/share/dsv4/models/dsv4-demo/config.json" ] || fail "no share/dsv4/models/dsv4-demo"
# No path into the source tree's data is compiled in. (A sanitizer build keeps one module path of
# its own in its metadata, so the check names the data folders rather than the whole tree.)
SRC=$(cd "$ROOT" && pwd -P)
for d in "$SRC/data" "$SRC/models"; do
  if grep -qF "$d" "$WORK/prefix/bin/dsv4"; then fail "the binary holds the source path $d"; fi
done

# Moved elsewhere and run from another directory: same greedy text as the build tree's binary.
mv "$WORK/prefix" "$WORK/moved"
"$DSV4" run --raw -p "def fibonacci(n):" -n 6 --temperature 0 >"$WORK/built" 2>/dev/null || fail "build-tree run failed"
(cd / && "$WORK/moved/bin/dsv4" run --raw -p "def fibonacci(n):" -n 6 --temperature 0) >"$WORK/installed" 2>"$WORK/err" \
  || { cat "$WORK/err"; fail "installed run failed"; }
[ -s "$WORK/installed" ] || fail "installed run printed nothing"
cmp -s "$WORK/built" "$WORK/installed" || fail "installed binary's output differs from the build tree's"
echo '{"text":"héllo wörld"}' | (cd / && "$WORK/moved/bin/dsv4" tokenize) | grep -q '"ids"' || fail "installed tokenize failed"

# No data next to the binary: a clear error naming where it looked, not a crash.
cp "$WORK/moved/bin/dsv4" "$WORK/lonely"
if "$WORK/lonely" run --raw -p "x" -n 1 >/dev/null 2>"$WORK/err2"; then fail "ran without its data"; fi
grep -q "no dsv4 data directory" "$WORK/err2" || { cat "$WORK/err2"; fail "no clear message without data"; }
# DSV4_DATA_DIR overrides the search; a wrong one is named.
DSV4_DATA_DIR="$WORK/moved/share/dsv4" "$WORK/lonely" run --raw -p "def fibonacci(n):" -n 6 --temperature 0 \
  >"$WORK/env" 2>/dev/null || fail "DSV4_DATA_DIR run failed"
cmp -s "$WORK/built" "$WORK/env" || fail "DSV4_DATA_DIR run's output differs"
if DSV4_DATA_DIR="$WORK/nowhere" "$WORK/lonely" run --raw -p "x" -n 1 >/dev/null 2>"$WORK/err3"; then fail "bad DSV4_DATA_DIR accepted"; fi
grep -q "DSV4_DATA_DIR" "$WORK/err3" || fail "bad DSV4_DATA_DIR not named"
echo "install_layout: ok"

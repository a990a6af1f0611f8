#!/usr/bin/env bash
# Tokenizer encode throughput (see bench/README.md). Usage: bench/tokenizer.sh [extra dsv4 args]
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./build/dsv4 tokenize --bench --bench-source . "$@"

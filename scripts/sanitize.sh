#!/usr/bin/env bash
# Builds dsv4 with AddressSanitizer + UndefinedBehaviorSanitizer into ./build-asan (Debug) and
# runs the test suite there. Extra arguments go to ctest, e.g. a subset:
#   bash scripts/sanitize.sh -R '^(Synth|Integrity|Safetensors)\.'
# JOBS (default 2) bounds the build parallelism; the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan}
JOBS=${JOBS:-2}
cmake -S . -B "$BUILD_DIR" -DDSV4_SANITIZE=ON -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Debug} >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
# Any sanitizer report fails the test that triggered it; leaks are reported at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD_DIR"
ctest --output-on-failure -j"$JOBS" "$@"

# Sourced by the fuzz tests: builds a libFuzzer target with clang++ and ASan + UBSan, and runs it.
#   start_fuzz <name> <dsv4 binary> <repo root> <source>...
#       exits 0 with SKIP when clang++ is missing; sets WORK (a temp dir, removed on exit),
#       CORPUS (an empty folder in it, for the caller's seeds) and FUZZER (the binary, built
#       next to the dsv4 build in fuzz-build/ so that reruns only recompile what changed).
#   run_fuzz <name> <max input length>
#       fuzzes FUZZER on CORPUS for FUZZ_SECONDS (default 20); on any crash, sanitizer report
#       or leak prints the log's tail, copies the reproducer to fuzz/artifacts/ and exits 1.

start_fuzz() {
  local name=$1 dsv4=$2
  FUZZ_ROOT=$(cd "$3" && pwd)
  shift 3
  local cxx=${FUZZ_CXX:-clang++}
  if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "$name: SKIP: $cxx not found (install clang to run the fuzzer)"
    exit 0
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsv4_fuzz.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  CORPUS="$WORK/corpus"
  mkdir -p "$CORPUS"
  local obj
  obj="$(cd "$(dirname "$dsv4")" && pwd)/fuzz-build/$name"
  mkdir -p "$obj"
  FUZZER="$obj/$name"
  FUZZ_START=$(date +%s)
  local flags="-std=c++20 -O1 -gline-tables-only -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
  {
    echo "CXX := $cxx"
    echo "FLAGS := $flags"
    local objs="" s o
    for s in "$@"; do
      o="$obj/$(echo "$s" | tr / _).o"
      objs="$objs $o"
      printf '%s: %s\n\t$(CXX) $(FLAGS) -MMD -MP -I%s -c $< -o $@\n' "$o" "$FUZZ_ROOT/$s" "$FUZZ_ROOT/src"
      echo "-include ${o%.o}.d"
    done
    printf '%s:%s\n\t$(CXX) $(FLAGS) $^ -o $@ -lpthread\n' "$FUZZER" "$objs"
  } >"$obj/Makefile.new"
  # Keep the old Makefile (and its timestamps) when nothing changed.
  if cmp -s "$obj/Makefile.new" "$obj/Makefile"; then rm -f "$obj/Makefile.new"; else mv "$obj/Makefile.new" "$obj/Makefile"; rm -f "$obj"/*.o; fi
  make -s -f "$obj/Makefile" -j2 "$FUZZER"
  echo "$name: fuzzer up to date after $(($(date +%s) - FUZZ_START)) s"
}

run_fuzz() {
  local name=$1 max_len=$2 seconds=${FUZZ_SECONDS:-20}
  echo "$name: $(ls "$CORPUS" | wc -l) seed inputs; fuzzing for ${seconds} s"
  (
    cd "$WORK"
    "$FUZZER" "$CORPUS" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$WORK/" >"$WORK/fuzz.log" 2>&1
  ) || {
    tail -n 60 "$WORK/fuzz.log"
    local a
    for a in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
      [ -f "$a" ] || continue
      mkdir -p "$FUZZ_ROOT/fuzz/artifacts"
      cp "$a" "$FUZZ_ROOT/fuzz/artifacts/"
      echo "$name: reproducer saved to fuzz/artifacts/$(basename "$a")"
    done
    echo "$name: FAILED"
    exit 1
  }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/fuzz.log" || true
  echo "$name: OK, no crash in ${seconds} s (total $(($(date +%s) - FUZZ_START)) s)"
}

# Sourced by the SDK client tests: starts `dsv4 serve` on the demo model on a free port, with an
# API key and an audit log, and stops it on exit.
#   require_sdk <repo root> <npm package> <name>   node and the SDK (tests/clients) are installed
#   start_live_server <dsv4 binary> <repo root> <name> [key-file]
# The latter sets WORK (a temp dir, removed on exit), KEY, PORT and SERVER_PID; with "key-file"
# the key goes in through --api-key-file, otherwise through --api-key. DSV4_LAUNCHER, if set, is
# put in front of the command (e.g. "mpirun -np 2": the server as ranks of an MPI launch).
# LIVE_SERVER_FLAGS, if set (an array), adds serve flags; LIVE_SERVER_CTX sets the context (2048).
#   wait_for_serve_port <server log> <server pid> <name>
# sets PORT from the server's "listening on" line (60 s at most; exits 1, showing the log, if the
# server ends or never listens). The benchmarks under bench/server use it too.

wait_for_serve_port() {
  local log=$1 pid=$2 name=$3
  PORT=""
  for _ in $(seq 1 600); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | sed 's/.*://' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: the server exited:"; cat "$log"; exit 1; }
    sleep 0.1
  done
  echo "$name: the server did not start:"
  cat "$log"
  exit 1
}

require_sdk() {
  local root=$1 package=$2 name=$3
  command -v node >/dev/null || { echo "$name: node is not installed (run scripts/setup.sh)"; exit 1; }
  [ -d "$root/tests/clients/node_modules/$package" ] ||
    { echo "$name: tests/clients/node_modules is missing $package (run scripts/setup.sh)"; exit 1; }
}

start_live_server() {
  local dsv4=$1 root=$2 name=$3 how=${4:-}
  WORK=$(mktemp -d)
  SERVER_PID=""
  trap stop_live_server EXIT
  KEY="test-key-$$"
  local key_flag=(--api-key "$KEY")
  if [ "$how" = key-file ]; then
    printf '%s\n' "$KEY" >"$WORK/key"
    key_flag=(--api-key-file "$WORK/key")
  fi
  # The verification cache goes to the temp dir, so the test checks the demo model's files.
  local launcher=()
  [ -n "${DSV4_LAUNCHER:-}" ] && read -r -a launcher <<<"$DSV4_LAUNCHER"
  DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive "${launcher[@]}" "$dsv4" serve -m "$root/models/dsv4-demo" --port 0 \
    --ctx "${LIVE_SERVER_CTX:-2048}" "${key_flag[@]}" --audit-log "$WORK/audit.jsonl" --max-running 16 \
    "${LIVE_SERVER_FLAGS[@]}" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_for_serve_port "$WORK/server.log" "$SERVER_PID" "$name"
  echo "$name: dsv4 serve on port $PORT"
}

stop_live_server() {
  if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "${WORK:-}"
}

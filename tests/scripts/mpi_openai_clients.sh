#!/usr/bin/env bash
# The OpenAI SDK client tests (openai_clients.test.mjs) against `mpirun -np 2 dsv4 serve` on the
# demo model (issue #17): rank 0 serves HTTP, both ranks run every engine call (batched decode,
# chunked prefill, prefix reuse, cancellations) in lockstep. Skipped without mpirun.
# Usage: mpi_openai_clients.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
command -v mpirun >/dev/null || { echo "mpi_openai_clients: no mpirun: skipped"; exit 0; }
. "$ROOT/tests/scripts/lib/live_server.sh"
require_sdk "$ROOT" openai mpi_openai_clients
export OMP_NUM_THREADS=1
export DSV4_LAUNCHER="mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR -np 2"
start_live_server "$DSV4" "$ROOT" mpi_openai_clients
DSV4_BASE_URL="http://127.0.0.1:$PORT/v1" DSV4_API_KEY="$KEY" \
  timeout 400 node --test --test-concurrency=1 "$ROOT/tests/clients/openai_clients.test.mjs"

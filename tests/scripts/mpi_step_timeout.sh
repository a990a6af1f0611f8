#!/usr/bin/env bash
# A rank that hangs without dying (issue #17 point 4, docs/scale-out.md): `kill -STOP` on one rank
# of an `mpirun -np 2` job ends the job within --step-timeout plus a few seconds, with an error
# naming the rank and its host. Three cases: rank 1 stopped mid-decode (rank 0 reports), rank 0
# stopped mid-decode (rank 1 reports, whether rank 0 stopped inside a step or between two), rank 0
# stopped while `serve` is idle (rank 1, waiting for the next call, finds it silent at a roll
# call). Skipped without mpirun.
# Usage: mpi_step_timeout.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
command -v mpirun >/dev/null || { echo "mpi_step_timeout: no mpirun: skipped"; exit 0; }
WORK=$(mktemp -d)
victim=""
# A stopped rank must not outlive a failed check.
trap '[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null; rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1
fail() { echo "mpi_step_timeout: $*"; exit 1; }
TIMEOUT=4

"$DSV4" synth --preset tiny-0731 -o "$WORK/m" >/dev/null 2>&1 || fail "synth failed"

# stop_rank <case> <rank> <out|err> <ready pattern> <dsv4 arguments...>: starts the job, waits
# until its stdout or stderr matches the pattern, stops the rank and checks how the job ends.
stop_rank() {
  local case=$1 rank=$2 stream=$3 ready=$4
  shift 4
  timeout 120 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS \
    -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR -np 2 "$DSV4" "$@" -m "$WORK/m" --step-timeout $TIMEOUT \
    >"$WORK/out" 2>"$WORK/err" &
  local job=$!
  for _ in $(seq 1 240); do grep -q "$ready" "$WORK/$stream" && break; sleep 0.5; done
  grep -q "$ready" "$WORK/$stream" || { kill $job; cat "$WORK/err"; fail "$case: the job never got ready"; }
  victim=""
  for p in $(pgrep -f "$WORK/m --step-timeout"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank" && victim=$p
  done
  [ -n "$victim" ] || { kill $job; fail "$case: rank $rank not found"; }
  local start rc=0 took
  start=$(date +%s)
  kill -STOP "$victim"
  wait $job || rc=$?
  took=$(($(date +%s) - start))
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$WORK/err"; fail "$case: exit status $rc"; }
  # The step deadline, 2 s more for the other ranks (rank 1 when rank 0 is stopped), 2 s of roll call.
  [ $took -le $((TIMEOUT + 10)) ] || { cat "$WORK/err"; fail "$case: the job took $took s to end"; }
  grep -q "dsv4: rank $rank of 2 (host .*) did not answer: rank $((1 - rank)) of 2 (host .*) waited" "$WORK/err" ||
    { cat "$WORK/err"; fail "$case: rank $rank not named"; }
  kill -9 "$victim" 2>/dev/null || true
  victim=""
  echo "mpi_step_timeout: $case: the job ended after $took s"
}

stop_rank "rank 1 stopped in decode" 1 out . run --raw --temperature 0 -n 0 --ignore-eos -p x
stop_rank "rank 0 stopped in decode" 0 out . run --raw --temperature 0 -n 0 --ignore-eos -p x
stop_rank "rank 0 stopped in an idle server" 0 err "listening on" serve --port 0
echo "mpi_step_timeout: ok"

#!/usr/bin/env bash
# A rank that hangs without dying (issue #17 point 4, docs/scale-out.md): `kill -STOP` on one rank
# of `mpirun -np 2 dsv4 run` mid-decode ends the job within --step-timeout plus a few seconds,
# with an error naming the rank and its host; rank 1 stopped (rank 0 reports), then rank 0
# stopped (rank 1 reports). Skipped without mpirun.
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

for rank in 1 0; do
  timeout 120 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS \
    -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR -np 2 "$DSV4" run -m "$WORK/m" --raw --temperature 0 -n 0 --ignore-eos \
    -p x --step-timeout $TIMEOUT >"$WORK/out" 2>"$WORK/err" &
  job=$!
  for _ in $(seq 1 240); do [ -s "$WORK/out" ] && break; sleep 0.5; done
  [ -s "$WORK/out" ] || { kill $job; cat "$WORK/err"; fail "the decode under mpirun printed nothing"; }
  victim=""
  for p in $(pgrep -f "$WORK/m --raw"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank" && victim=$p
  done
  [ -n "$victim" ] || { kill $job; fail "rank $rank not found"; }
  start=$(date +%s)
  kill -STOP "$victim"
  rc=0; wait $job || rc=$?
  took=$(($(date +%s) - start))
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$WORK/err"; fail "rank $rank stopped: exit status $rc"; }
  # The step deadline, 2 s more for the other ranks (rank 1 when rank 0 is stopped), 2 s of roll call.
  [ $took -le $((TIMEOUT + 10)) ] || { cat "$WORK/err"; fail "rank $rank stopped: the job took $took s to end"; }
  grep -q "dsv4: rank $rank of 2 (host .*) did not answer: rank $((1 - rank)) of 2 (host .*) waited" "$WORK/err" ||
    { cat "$WORK/err"; fail "rank $rank stopped: not named"; }
  kill -9 "$victim" 2>/dev/null || true
  victim=""
  echo "mpi_step_timeout: rank $rank stopped: the job ended after $took s"
done
echo "mpi_step_timeout: ok"

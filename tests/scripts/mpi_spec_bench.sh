#!/usr/bin/env bash
# `dsv4 bench --speculative` under `mpirun -np 2` (issue #17): both engines (without and with the
# drafter) run on every rank in lockstep. The bench fails by itself when a speculative or
# controlled decode run's greedy output differs from the plain one; here its JSON must hold every
# figure. Skipped without mpirun.
# Usage: mpi_spec_bench.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
command -v mpirun >/dev/null || { echo "mpi_spec_bench: no mpirun: skipped"; exit 0; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1
"$DSV4" synth --preset tiny-0731 -o "$WORK/m" >/dev/null 2>&1 || { echo "mpi_spec_bench: synth failed"; exit 1; }
timeout 300 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS \
  -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR -np 2 "$DSV4" bench --speculative -m "$WORK/m" --context 8 \
  --decode-tokens 12 --repetitions 1 --json >"$WORK/out.json" 2>"$WORK/err" ||
  { cat "$WORK/err"; echo "mpi_spec_bench: the bench failed"; exit 1; }
python3 - "$WORK/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["block"] == 5, r["block"]
assert len(r["verify_ms"]) == 6 and all(ms > 0 for ms in r["verify_ms"]), r["verify_ms"]
assert r["plain_tok_s"] > 0 and r["own_drafter"]["tok_s"] > 0 and r["own_drafter"]["adaptive_tok_s"] > 0
at = r["at_accepted_length"]
assert [f["accepted"] for f in at] == list(range(6)), at
assert all(f["tok_s"] > 0 and f["adaptive_tok_s"] > 0 for f in at), at
print("mpi_spec_bench: ok (6-position verify %.2fx a step)" % r["verify_cost_ratio"])
PY

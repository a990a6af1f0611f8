#!/usr/bin/env bash
# kv_cache_dir.sh with `dsv4 serve` as 2 ranks of an MPI launch (issue #17): rank 0 writes the
# state files, and a restarted job resumes every rank from them (the lockstep engine sends the
# bytes with the new sequence). Skipped without mpirun.
# Usage: mpi_kv_cache_dir.sh <dsv4 binary> <repo root>
set -euo pipefail
command -v mpirun >/dev/null || { echo "mpi_kv_cache_dir: no mpirun: skipped"; exit 0; }
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export DSV4_LAUNCHER="mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -np 2"
exec bash "$(dirname "$0")/kv_cache_dir.sh" "$@"

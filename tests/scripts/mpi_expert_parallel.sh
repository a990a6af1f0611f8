#!/usr/bin/env bash
# Expert parallelism under mpirun (issue #17, docs/scale-out.md): `dsv4 score` JSON and greedy
# `dsv4 run` text (speculative decoding on) bit-identical at N = 1, 2, 3 ranks (3: an uneven
# split) to a plain process; a shard missing on one rank, and a rank killed mid-decode, end the
# job promptly with an error naming the rank. Skipped without mpirun.
# Usage: mpi_expert_parallel.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
FIXTURES="$ROOT/../shared/fixtures"
command -v mpirun >/dev/null || { echo "mpi_expert_parallel: no mpirun: skipped"; exit 0; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# One OpenMP thread per rank and ranks that yield while they wait: N ranks share few cores here.
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1
MPIRUN=(timeout 300 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1
        -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR)
fail() { echo "mpi_expert_parallel: $*"; exit 1; }

# score exits 1 when some checks fail (they do on the fixtures today); 2 is an error.
score_ok() { [ "$1" -le 1 ]; }

for case in "tiny 0" "tiny-c 7"; do
  set -- $case
  f=$1 chunk=$2
  args=(score -m "$FIXTURES/$f/checkpoint" --reference "$FIXTURES/$f/reference.safetensors" --chunk "$chunk")
  rc=0; "$DSV4" "${args[@]}" >"$WORK/$f.json" 2>"$WORK/$f.err" || rc=$?
  score_ok $rc || { cat "$WORK/$f.err"; fail "plain score of $f failed ($rc)"; }
  for np in 1 2 3; do
    rc=0; "${MPIRUN[@]}" -np $np "$DSV4" "${args[@]}" >"$WORK/$f.$np.json" 2>"$WORK/$f.$np.err" || rc=$?
    [ -s "$WORK/$f.$np.json" ] || { cat "$WORK/$f.$np.err"; fail "score of $f on $np ranks printed nothing ($rc)"; }
    cmp -s "$WORK/$f.json" "$WORK/$f.$np.json" || { diff "$WORK/$f.json" "$WORK/$f.$np.json" | head; fail "score of $f on $np ranks differs"; }
  done
done

# A release-shaped checkpoint with its DSpark drafter (8 experts: 2 + 3 + 3 on three ranks), in
# several shards, the main layers' experts 0-3 and 4-7 in shards of their own (--expert-shards 2);
# greedy text with speculative decoding (draft, verify chunks, commits).
"$DSV4" synth --preset tiny-0731 --vocab 129280 --shard-mib 40 --expert-shards 2 -o "$WORK/m" >/dev/null 2>&1 ||
  fail "synth failed"
run_args=(run -m "$WORK/m" --raw --temperature 0 -n 24 --ignore-eos -p "def fibonacci(n):")
"$DSV4" "${run_args[@]}" >"$WORK/run.txt" 2>"$WORK/run.err" || { cat "$WORK/run.err"; fail "plain run failed"; }
grep -q "drafts: [0-9]* of [1-9]" "$WORK/run.err" || { cat "$WORK/run.err"; fail "the run did not draft"; }
for np in 2 3; do
  "${MPIRUN[@]}" -np $np "$DSV4" "${run_args[@]}" >"$WORK/run.$np.txt" 2>"$WORK/run.$np.err" ||
    { cat "$WORK/run.$np.err"; fail "run on $np ranks failed"; }
  cmp -s "$WORK/run.txt" "$WORK/run.$np.txt" || fail "run on $np ranks printed other text"
done

# Rank 1 of 2 with its own copy of the directory. A rank maps and verifies only the shards holding
# its tensors: without the shard of experts 0-3 (rank 0's), rank 1 runs. Without the shard of
# experts 4-7 (its own), the integrity check fails there, and with --skip-verify the load does;
# either way the job ends with rank 1's name and the file's, in seconds.
shard_of() { grep "\"$1\"" "$WORK/m/model.safetensors.index.json" | sed 's/.*: "\(.*\)".*/\1/'; }
mkdir "$WORK/m1"
ln "$WORK/m"/* "$WORK/m1/" 2>/dev/null || cp "$WORK/m"/* "$WORK/m1/"
rm "$WORK/m1/$(shard_of layers.0.ffn.experts.0.w1.weight)"
[ "$(shard_of layers.0.ffn.experts.0.w1.weight)" != "$(shard_of layers.0.ffn.experts.7.w1.weight)" ] ||
  fail "experts 0 and 7 share a shard"
"${MPIRUN[@]}" -np 1 "$DSV4" "${run_args[@]}" : -np 1 "$DSV4" run -m "$WORK/m1" "${run_args[@]:3}" \
  >"$WORK/run.m1.txt" 2>"$WORK/run.m1.err" || { cat "$WORK/run.m1.err"; fail "rank 1 without rank 0's shard failed"; }
cmp -s "$WORK/run.txt" "$WORK/run.m1.txt" || fail "rank 1 without rank 0's shard printed other text"
theirs=$(shard_of layers.0.ffn.experts.0.w1.weight)
ln "$WORK/m/$theirs" "$WORK/m1/" 2>/dev/null || cp "$WORK/m/$theirs" "$WORK/m1/"
shard="$WORK/m1/$(shard_of layers.0.ffn.experts.7.w1.weight)"
rm "$shard"
for extra in "" --skip-verify; do
  start=$(date +%s)
  rc=0
  timeout 120 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS -x OMP_WAIT_POLICY \
    -x DSV4_CACHE_DIR -np 1 "$DSV4" run -m "$WORK/m" $extra --raw -p x -n 2 : \
    -np 1 "$DSV4" run -m "$WORK/m1" $extra --raw -p x -n 2 >/dev/null 2>"$WORK/miss.err" || rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$WORK/miss.err"; fail "missing shard ($extra): exit status $rc"; }
  grep -q "rank 1 of 2 (host " "$WORK/miss.err" || { cat "$WORK/miss.err"; fail "missing shard ($extra): rank 1 not named"; }
  grep -q "$(basename "$shard")" "$WORK/miss.err" || { cat "$WORK/miss.err"; fail "missing shard ($extra): the shard not named"; }
  [ $(($(date +%s) - start)) -le 60 ] || fail "missing shard ($extra): took over 60 s"
done

# Rank 1 killed mid-decode: the launcher ends the job within 10 s, naming the rank.
"${MPIRUN[@]}" -np 2 "$DSV4" run -m "$WORK/m" --raw --temperature 0 -n 0 --ignore-eos -p x >"$WORK/kill.out" 2>"$WORK/kill.err" &
job=$!
for _ in $(seq 1 240); do [ -s "$WORK/kill.out" ] && break; sleep 0.5; done
[ -s "$WORK/kill.out" ] || { kill $job; fail "the decode under mpirun printed nothing"; }
victim=""
for p in $(pgrep -f "$WORK/m --raw"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
done
[ -n "$victim" ] || { kill $job; fail "rank 1 not found"; }
start=$(date +%s)
kill -9 "$victim"
rc=0; wait $job || rc=$?
[ $rc -ne 0 ] || fail "the job survived a dead rank"
[ $(($(date +%s) - start)) -le 10 ] || fail "the job took over 10 s to end after rank 1 died"
grep -q "rank 1" "$WORK/kill.err" || { cat "$WORK/kill.err"; fail "the dead rank was not named"; }
echo "mpi_expert_parallel: ok"

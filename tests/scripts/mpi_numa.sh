#!/usr/bin/env bash
# --numa (issue #17, docs/scale-out.md): the replicated weights copied to the process's NUMA node
# change where bytes live, never their values. `dsv4 score` JSON and greedy `dsv4 run` text are
# identical with and without --numa, in one process and on 2 ranks under mpirun; `dsv4 bench`
# reports the weights' bytes per node, for the process and for each rank. On a one-node machine
# every rank's home is node 0. The mpirun half is skipped without mpirun.
# Usage: mpi_numa.sh <dsv4 binary> <repo root>
set -euo pipefail
DSV4=$1
ROOT=$2
FIXTURES="$ROOT/../shared/fixtures"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DSV4_CACHE_DIR="$WORK/cache" OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1
MPIRUN=(timeout 300 mpirun --oversubscribe --allow-run-as-root --mca mpi_yield_when_idle 1
        -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x DSV4_CACHE_DIR)
fail() { echo "mpi_numa: $*"; exit 1; }
have_mpi=1
command -v mpirun >/dev/null || { have_mpi=0; echo "mpi_numa: no mpirun: the mpirun cases are skipped"; }

# score exits 1 when some checks fail (they do on the fixtures today); 2 is an error.
for case in "tiny 0" "tiny-c 7"; do
  set -- $case
  f=$1 chunk=$2
  args=(score -m "$FIXTURES/$f/checkpoint" --reference "$FIXTURES/$f/reference.safetensors" --chunk "$chunk")
  rc=0; "$DSV4" "${args[@]}" >"$WORK/$f.json" 2>"$WORK/$f.err" || rc=$?
  [ $rc -le 1 ] || { cat "$WORK/$f.err"; fail "plain score of $f failed ($rc)"; }
  rc=0; "$DSV4" "${args[@]}" --numa >"$WORK/$f.numa.json" 2>"$WORK/$f.numa.err" || rc=$?
  [ $rc -le 1 ] || { cat "$WORK/$f.numa.err"; fail "score --numa of $f failed ($rc)"; }
  cmp -s "$WORK/$f.json" "$WORK/$f.numa.json" || fail "score --numa of $f differs"
  [ $have_mpi = 1 ] || continue
  rc=0; "${MPIRUN[@]}" -np 2 "$DSV4" "${args[@]}" --numa >"$WORK/$f.2.json" 2>"$WORK/$f.2.err" || rc=$?
  [ -s "$WORK/$f.2.json" ] || { cat "$WORK/$f.2.err"; fail "score --numa of $f on 2 ranks printed nothing ($rc)"; }
  cmp -s "$WORK/$f.json" "$WORK/$f.2.json" || fail "score --numa of $f on 2 ranks differs"
done

# Greedy text with speculative decoding, on a release-shaped synthetic with its main layers'
# experts in shards of their own per rank (--expert-shards 2).
"$DSV4" synth --preset tiny-0731 --vocab 129280 --shard-mib 40 --expert-shards 2 -o "$WORK/m" >/dev/null 2>&1 ||
  fail "synth failed"
run_args=(run -m "$WORK/m" --raw --temperature 0 -n 24 --ignore-eos -p "def fibonacci(n):")
"$DSV4" "${run_args[@]}" >"$WORK/run.txt" 2>"$WORK/run.err" || { cat "$WORK/run.err"; fail "plain run failed"; }
"$DSV4" "${run_args[@]}" --numa >"$WORK/run.numa.txt" 2>"$WORK/run.numa.err" ||
  { cat "$WORK/run.numa.err"; fail "run --numa failed"; }
cmp -s "$WORK/run.txt" "$WORK/run.numa.txt" || fail "run --numa printed other text"
if [ $have_mpi = 1 ]; then
  # The launch a two-socket machine uses: one rank per node, bound to it.
  "${MPIRUN[@]}" --map-by numa --bind-to numa -np 2 "$DSV4" "${run_args[@]}" --numa >"$WORK/run.2.txt" \
      2>"$WORK/run.2.err" || { cat "$WORK/run.2.err"; fail "run --numa on 2 ranks failed"; }
  cmp -s "$WORK/run.txt" "$WORK/run.2.txt" || fail "run --numa on 2 ranks printed other text"
fi

# bench: the weights' bytes per node. With --numa the replicated ones are a private copy (RssAnon)
# rather than mapped file pages, so the mapped weights shrink.
bench_args=(bench -m "$WORK/m" --prefill 8 --decode-context 0 --decode-tokens 2 --repetitions 1 --json)
"$DSV4" "${bench_args[@]}" >"$WORK/bench.json" 2>"$WORK/bench.err" || { cat "$WORK/bench.err"; fail "bench failed"; }
"$DSV4" "${bench_args[@]}" --numa >"$WORK/bench.numa.json" 2>"$WORK/bench.numa.err" ||
  { cat "$WORK/bench.numa.err"; fail "bench --numa failed"; }
if [ $have_mpi = 1 ]; then
  "${MPIRUN[@]}" -np 2 "$DSV4" "${bench_args[@]}" --numa >"$WORK/bench.2.json" 2>"$WORK/bench.2.err" ||
    { cat "$WORK/bench.2.err"; fail "bench --numa on 2 ranks failed"; }
fi
python3 - "$WORK" $have_mpi <<'PY'
import json, os, sys
work, have_mpi = sys.argv[1], sys.argv[2] == "1"
plain = json.load(open(os.path.join(work, "bench.json")))["memory"]
numa = json.load(open(os.path.join(work, "bench.numa.json")))["memory"]
for m in (plain, numa):
    nodes = m["weight_bytes_per_node"]
    assert nodes and all(int(k) >= 0 for k in nodes) and sum(nodes.values()) > 0, m
assert numa["rss_file_end_bytes"] < plain["rss_file_end_bytes"], (numa, plain)
if have_mpi:
    ranks = json.load(open(os.path.join(work, "bench.2.json")))["ranks"]
    assert len(ranks) == 2, ranks
    for r in ranks:
        assert sum(r["weight_bytes_per_node"].values()) > 0, r
print("mpi_numa: ok (weights by node: plain %s, --numa %s)" % (plain["weight_bytes_per_node"], numa["weight_bytes_per_node"]))
PY

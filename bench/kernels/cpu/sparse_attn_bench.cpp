// The attention-side kernels that grow with the context (kernels/cpu/sparse_attn.h), one query at
// Flash shapes on the calling thread: the SIMD kernels next to their scalar definitions
// (`*_scalar`). Entries and keys are random bf16; the costs do not depend on the values.
//
//   build/sparse_attn_bench [--benchmark_filter=Indexer]
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/sparse_attn.h"

namespace dsv4::kernels {
namespace {

constexpr int64_t kHeads = 64, kDim = 512, kWindow = 128;   // Flash attention (spec §1)
constexpr int64_t kIdxHeads = 64, kIdxDim = 128;            // Flash indexer

float next_value(uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return float(int((s >> 33) % 2001) - 1000) * 1e-3f;
}

struct AttnCase {
  std::vector<float> q, sinks, kv, out;
  std::vector<uint16_t> kv16;
  std::vector<const uint16_t*> rows;
  explicit AttnCase(int64_t n) : q(kHeads * kDim), sinks(kHeads, 0.1f), kv(n * kDim), out(kHeads * kDim), kv16(n * kDim), rows(n) {
    uint64_t s = 1;
    for (auto& v : q) v = round_bf16(next_value(s));
    for (size_t i = 0; i < kv.size(); ++i) {
      kv16[i] = f32_to_bf16(next_value(s));
      kv[i] = bf16_to_f32(kv16[i]);
    }
    for (int64_t a = 0; a < n; ++a) rows[size_t(a)] = kv16.data() + a * kDim;
  }
};

// Window + compressed entries of one query: CSA reads 128 + 512 (top-k), HCA at 32K 128 + 256.
void BM_Attention(benchmark::State& state, bool simd) {
  const int64_t n = state.range(0);
  AttnCase c(n);
  const float scale = 1.0f / std::sqrt(float(kDim));
  for (auto _ : state) {
    if (simd)
      attention_rows_bf16(c.q.data(), c.rows.data(), kWindow, n, kDim, scale, c.sinks.data(), 0, kHeads, c.out.data());
    else
      attention_with_sink(c.q.data(), kHeads, c.kv.data(), kWindow, n, kDim, scale, c.sinks.data(), c.out.data());
    benchmark::DoNotOptimize(c.out.data());
  }
  state.counters["entries"] = double(n);
}

// Scores of every visible compressed entry: floor((t+1)/4) entries at context t.
void BM_IndexerScores(benchmark::State& state, bool simd) {
  const int64_t n = state.range(0);
  uint64_t s = 2;
  std::vector<float> q(kIdxHeads * kIdxDim), w(kIdxHeads), scores(n);
  std::vector<uint16_t> keys(n * kIdxDim);
  for (auto& v : q) v = round_bf16(next_value(s));
  for (auto& v : w) v = round_bf16(next_value(s) * 0.1f);
  for (auto& k : keys) k = f32_to_bf16(next_value(s));
  for (auto _ : state) {
    if (simd) indexer_scores(q.data(), w.data(), kIdxHeads, kIdxDim, keys.data(), 0, n, scores.data());
    else indexer_scores_ref(q.data(), w.data(), kIdxHeads, kIdxDim, keys.data(), 0, n, scores.data());
    benchmark::DoNotOptimize(scores.data());
  }
  state.counters["context"] = double(4 * n);
  state.counters["entries/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_Attention, simd, true)->Arg(640)->Arg(384)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Attention, scalar, false)->Arg(640)->Unit(benchmark::kMicrosecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_IndexerScores, simd, true)->Arg(256)->Arg(8192)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_IndexerScores, scalar, false)->Arg(8192)->Unit(benchmark::kMicrosecond)->Iterations(3);

}  // namespace
}  // namespace dsv4::kernels

BENCHMARK_MAIN();

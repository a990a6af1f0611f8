#include "model/indexer.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/quant_sim.h"
#include "kernels/cpu/sparse_attn.h"

namespace dsv4::model {

namespace {
// Below this many entries one thread scores them faster than a fork/join of the pool.
constexpr int64_t kMinParallelEntries = 256;
constexpr int64_t kMaxRopeDim = 256;
}  // namespace

void indexer_finish_queries(const Model& m, const kernels::RopeFreqs& rope, bool hadamard, int64_t n,
                            const int64_t* positions, float* qI, float* weights) {
  const io::ModelConfig& c = m.cfg;
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim;
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  float cs[kMaxRopeDim];
  for (int64_t t = 0; t < n; ++t) {
    kernels::rope_angles(rope, positions[t], cs);
    for (int64_t h = 0; h < Hi; ++h) {
      float* v = qI + (t * Hi + h) * Di;
      kernels::rope_apply(v, Di, rope.rope_dim, cs, false);
      if (hadamard) kernels::hadamard_rotate(v, Di);
      kernels::fp4_sim(v, Di, 32);
    }
  }
  // The factor enters as an f32 scalar and the product is rounded once (spec review note 3).
  const float scale = float(1.0 / std::sqrt(double(Di)) / std::sqrt(double(Hi)));
  for (int64_t i = 0; i < n * Hi; ++i) weights[i] = round_bf16(weights[i] * scale);
}

void indexer_score_row(const Model& m, const float* qI, const float* weights, const uint16_t* keys, int64_t n_visible,
                       bool parallel, float* score) {
  const int64_t Hi = m.cfg.index_n_heads, Di = m.cfg.index_head_dim;
  run_parallel(parallel && n_visible >= kMinParallelEntries, [&](int64_t id, int64_t nth) {
    const int64_t j0 = n_visible * id / nth, j1 = n_visible * (id + 1) / nth;
    if (j0 < j1) kernels::indexer_scores(qI, weights, Hi, Di, keys, j0, j1, score);
  });
}

int64_t topk_entries(const float* score, int64_t n, int64_t k, const uint8_t* allowed, int32_t* selected, Arena& a) {
  ArenaScope scope(a);
  int32_t* order = a.alloc<int32_t>(n);
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j)
    if (!allowed || allowed[j]) order[count++] = int32_t(j);
  k = std::min(k, count);
  if (k == 0) return 0;
  // The order below is total (score, then index), so any selection algorithm gives the same
  // list: the k best first (nth_element), then sorted.
  auto better = [&](int32_t x, int32_t y) { return score[x] > score[y] || (score[x] == score[y] && x < y); };
  if (k < count) std::nth_element(order, order + k, order + count, better);
  std::sort(order, order + k, better);
  std::copy(order, order + k, selected);
  return k;
}

int64_t indexer_select(const Model& m, const float* qI, const float* weights, const uint16_t* keys, int64_t n_visible,
                       bool parallel, int32_t* selected, Arena& a) {
  ArenaScope scope(a);
  float* score = a.alloc<float>(n_visible);
  indexer_score_row(m, qI, weights, keys, n_visible, parallel, score);
  return topk_entries(score, n_visible, m.cfg.index_topk, nullptr, selected, a);
}

}  // namespace dsv4::model

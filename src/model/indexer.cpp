#include "model/indexer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dtype.h"
#include "kernels/cpu/quant_sim.h"
#include "model/linear.h"

namespace dsv4::model {

void indexer_queries(const Model& m, const IndexerWeights& iw, const float* x, const float* qr, int64_t n,
                     const int64_t* positions, float* qI, float* weights) {
  const io::ModelConfig& c = m.cfg;
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim;
  linear_quant(iw.wq_b, qr, n, qI);
  const kernels::RopeFreqs& rope = m.rope_for(4);
  std::vector<float> cs(size_t(rope.rope_dim));
  for (int64_t t = 0; t < n; ++t) {
    kernels::rope_angles(rope, positions[t], cs.data());
    for (int64_t h = 0; h < Hi; ++h) {
      float* v = qI + (t * Hi + h) * Di;
      kernels::rope_apply(v, Di, rope.rope_dim, cs.data(), false);
      kernels::hadamard_rotate(v, Di);
      kernels::fp4_sim(v, Di, 32);
    }
  }
  linear_bf16(iw.weights_proj, x, n, weights);
  // The factor enters as an f32 scalar and the product is rounded once (spec review note 3).
  const float scale = float(1.0 / std::sqrt(double(Di)) / std::sqrt(double(Hi)));
  for (int64_t i = 0; i < n * Hi; ++i) weights[i] = round_bf16(weights[i] * scale);
}

void indexer_select(const Model& m, const float* qI, const float* weights, const std::vector<uint16_t>& keys,
                    int64_t n_visible, std::vector<int64_t>& selected) {
  const io::ModelConfig& c = m.cfg;
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim;
  thread_local std::vector<float> score, key;   // per-query scratch, reused
  score.resize(static_cast<size_t>(n_visible));
  key.resize(static_cast<size_t>(Di));
  for (int64_t j = 0; j < n_visible; ++j) {
    for (int64_t i = 0; i < Di; ++i) key[size_t(i)] = bf16_to_f32(keys[size_t(j * Di + i)]);
    float total = 0.0f;
    for (int64_t h = 0; h < Hi; ++h) {
      const float* q = qI + h * Di;
      float s = 0.0f;
      for (int64_t i = 0; i < Di; ++i) s += q[i] * key[size_t(i)];
      s = round_bf16(s);                                     // bf16 matmul output
      total += round_bf16(std::max(s, 0.0f) * weights[h]);   // relu(s)·w in bf16
    }
    score[size_t(j)] = round_bf16(total);
  }
  const int64_t k = std::min(c.index_topk, n_visible);
  selected.resize(size_t(n_visible));
  std::iota(selected.begin(), selected.end(), 0);
  auto better = [&](int64_t a, int64_t b) {
    return score[size_t(a)] > score[size_t(b)] || (score[size_t(a)] == score[size_t(b)] && a < b);
  };
  std::partial_sort(selected.begin(), selected.begin() + k, selected.end(), better);
  selected.resize(size_t(k));
}

}  // namespace dsv4::model

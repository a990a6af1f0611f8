#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dtype.h"
#include "kernels/cpu/quant_sim.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

float softplus(float z) { return z > 20.0f ? z : std::log1p(std::exp(z)); }   // PyTorch threshold 20

// One SwiGLU expert applied to n rows of x (already FP8-quantised in 128-blocks, since w1 and w3
// share the same input): y = bf16(w2(bf16(silu(min(g, L)) · clamp(u, ±L) · weight))).
void run_expert(const ExpertWeights& e, const float* xq, int64_t n, const float* row_weight, float limit,
                float* y) {
  const int64_t I = e.w1.rows;
  thread_local std::vector<float> g, u;   // reused across calls: no allocation once warm
  g.resize(size_t(n * I));
  u.resize(size_t(n * I));
  // w1 and w3 read the same input: one parallel region for both (same bits as two matmul calls).
  const kernels::MatmulJob gate_up[2] = {{e.w1, xq, n, g.data()}, {e.w3, xq, n, u.data()}};
  kernels::matmul_many(gate_up, 2);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < I; ++i) {
      float gv = round_bf16(g[size_t(t * I + i)]);   // GEMM outputs are bf16, upcast to f32
      float uv = round_bf16(u[size_t(t * I + i)]);
      if (limit > 0) {
        uv = std::clamp(uv, -limit, limit);   // up: two-sided
        gv = std::min(gv, limit);             // gate: upper bound only
      }
      const float silu = gv / (1.0f + std::exp(-gv));
      g[size_t(t * I + i)] = round_bf16(silu * uv * row_weight[t]);
    }
  }
  linear_quant(e.w2, g.data(), n, y);
}

}  // namespace

void route_token(const Model& m, const MoeWeights& w, bool hash_routed, const float* x, int32_t token, Routing& out) {
  const io::ModelConfig& c = m.cfg;
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<float> score(static_cast<size_t>(E));
  linear_f32(w.gate_view, x, 1, score.data());
  for (auto& s : score) s = std::sqrt(softplus(s));
  std::vector<int32_t> ids(static_cast<size_t>(K));
  if (hash_routed) {
    for (int64_t k = 0; k < K; ++k) ids[size_t(k)] = int32_t(w.tid2eid[int64_t(token) * K + k]);
  } else {
    std::vector<int32_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    // The bias only chooses the experts; their weights stay the unbiased scores.
    auto biased = [&](int32_t e) { return score[size_t(e)] + w.bias[e]; };
    std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
      return biased(a) > biased(b) || (biased(a) == biased(b) && a < b);
    });
    std::copy(order.begin(), order.begin() + K, ids.begin());
  }
  std::sort(ids.begin(), ids.end());
  float sum = 0.0f;
  for (int32_t e : ids) sum += score[size_t(e)];
  out.experts = ids;
  out.weights.resize(size_t(K));
  for (int64_t k = 0; k < K; ++k)
    out.weights[size_t(k)] = score[size_t(ids[size_t(k)])] / sum * float(c.routed_scaling_factor);
}

void moe_forward(const Model& m, const BlockWeights& b, const float* x, const int32_t* tokens, int64_t rows, float* out) {
  const io::ModelConfig& c = m.cfg;
  const int64_t D = c.hidden_size, E = c.n_routed_experts;
  const float limit = float(c.swiglu_limit);
  const MoeWeights& w = b.ffn;

  std::vector<Routing> routing(static_cast<size_t>(rows));
  for (int64_t t = 0; t < rows; ++t) route_token(m, w, b.hash_routed, x + t * D, tokens[t], routing[size_t(t)]);

  std::vector<float> xq(x, x + rows * D);
  kernels::act_quant_fp8(xq.data(), rows * D, 128);

  // Tokens grouped by expert; experts visited in ascending id, then the shared expert, so each
  // token's f32 sum runs in the reference's order.
  std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(E));
  std::vector<std::vector<float>> weight_of(static_cast<size_t>(E));
  for (int64_t t = 0; t < rows; ++t) {
    const Routing& r = routing[size_t(t)];
    for (size_t k = 0; k < r.experts.size(); ++k) {
      by_expert[size_t(r.experts[k])].push_back(t);
      weight_of[size_t(r.experts[k])].push_back(r.weights[k]);
    }
  }
  std::vector<float> acc(size_t(rows * D), 0.0f);
  std::vector<float> xe, ye;
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = by_expert[size_t(e)];
    if (toks.empty()) continue;
    const int64_t n = int64_t(toks.size());
    xe.resize(size_t(n * D));
    ye.resize(size_t(n * D));
    for (int64_t i = 0; i < n; ++i) std::copy(&xq[size_t(toks[size_t(i)] * D)], &xq[size_t((toks[size_t(i)] + 1) * D)], &xe[size_t(i * D)]);
    run_expert(w.experts[size_t(e)], xe.data(), n, weight_of[size_t(e)].data(), limit, ye.data());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) acc[size_t(toks[size_t(i)] * D + d)] += ye[size_t(i * D + d)];
  }
  std::vector<float> ones(size_t(rows), 1.0f);
  ye.resize(size_t(rows * D));
  run_expert(w.shared, xq.data(), rows, ones.data(), limit, ye.data());
  for (int64_t i = 0; i < rows * D; ++i) out[i] = round_bf16(acc[size_t(i)] + ye[size_t(i)]);
}

}  // namespace dsv4::model

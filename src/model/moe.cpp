#include "model/moe.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/parallel.h"
#include "model/expert_split.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

float softplus(float z) { return z > 20.0f ? z : std::log1p(std::exp(z)); }   // PyTorch threshold 20

// Token-expert pairs per parallel region: the routed experts of a decode step (K = 6) and the
// shared expert share one region for w1/w3 and one for w2; a long prefill runs in slices of
// this many pairs so the gate/up buffers stay small.
constexpr int64_t kPairsPerRegion = 64;

// One expert's share of a region: its rows of x (act_quant-ed once for all experts, then gathered),
// the rows' routing weights and where the output rows go.
struct ExpertRun {
  const ExpertWeights* w = nullptr;
  LinearInput x;                     // [n, D]
  const float* row_weight = nullptr; // [n]
  int64_t n = 0;
  float* g = nullptr;                // [n, I] gate, then the bf16 hidden h
  float* u = nullptr;                // [n, I] up, then act_quant(h)
  float* y = nullptr;                // [n, D]
};

// y = w2(bf16(silu(min(g, L)) · clamp(u, ±L) · weight)) for every run (spec §5.10), with w1+w3 of
// all runs in one parallel region and the w2 of all runs in another (each output bit-identical
// to its own linear call).
void run_experts(ExpertRun* runs, int64_t count, float limit, Arena& a) {
  ArenaScope scope(a);
  LinearJob* jobs = a.alloc<LinearJob>(2 * count);
  for (int64_t k = 0; k < count; ++k) {
    jobs[2 * k] = {LinearKind::quantized, runs[k].w->w1, runs[k].x, runs[k].n, runs[k].g};
    jobs[2 * k + 1] = {LinearKind::quantized, runs[k].w->w3, runs[k].x, runs[k].n, runs[k].u};
  }
  linear_many(jobs, 2 * count, a);
  // The SwiGLU (a libm expf per element) and the w2 act quant of each run, runs spread over the
  // threads: ~12k expf per layer at decode.
  int64_t elems = 0;
  for (int64_t k = 0; k < count; ++k) elems += runs[k].n * runs[k].w->w1.rows;
  parallel_for_static(elems >= (int64_t(1) << 12), count, [&](int64_t k, int64_t) {
    ExpertRun& r = runs[k];
    const int64_t I = r.w->w1.rows;
    for (int64_t t = 0; t < r.n; ++t) {
      for (int64_t i = 0; i < I; ++i) {
        float gv = r.g[t * I + i];   // bf16 GEMM outputs, upcast to f32
        float uv = r.u[t * I + i];
        if (limit > 0) {
          uv = std::clamp(uv, -limit, limit);   // up: two-sided
          gv = std::min(gv, limit);             // gate: upper bound only
        }
        const float silu = gv / (1.0f + std::exp(-gv));
        r.g[t * I + i] = round_bf16(silu * uv * r.row_weight[t]);
      }
    }
    // The w2 input is act_quant-ed here, on the run's thread, rather than by linear_many.
    jobs[k] = {LinearKind::quantized, r.w->w2, act_quant_rows(r.g, r.n, I, r.w->w2.act_block, r.u), r.n, r.y};
  });
  linear_many(jobs, count, a);
}

// acc[pair_row[p0 + i]] += y[i] for i in [0, n): pairs in ascending order, so each token's
// experts are added in ascending id (spec §5.10).
void add_pair_rows(float* acc, const int64_t* pair_row, int64_t p0, const float* y, int64_t n, int64_t D) {
  for (int64_t i = 0; i < n; ++i) {
    float* at = acc + pair_row[p0 + i] * D;
    const float* ye = y + i * D;
    for (int64_t d = 0; d < D; ++d) at[d] += ye[d];
  }
}

}  // namespace

void route_token(const Model& m, const MoeWeights& w, bool hash_routed, const float* logits, int32_t token,
                 int32_t* ids, float* weights, Arena& a) {
  const io::ModelConfig& c = m.cfg;
  const int64_t E = w.n_experts, K = w.top_k;
  ArenaScope scope(a);
  float* score = a.alloc<float>(E);
  for (int64_t e = 0; e < E; ++e) score[e] = std::sqrt(softplus(logits[e]));
  if (hash_routed) {
    for (int64_t k = 0; k < K; ++k) ids[k] = int32_t(w.tid2eid[int64_t(token) * K + k]);
  } else {
    int32_t* order = a.alloc<int32_t>(E);
    for (int64_t e = 0; e < E; ++e) order[e] = int32_t(e);
    // The bias only chooses the experts; their weights stay the unbiased scores.
    auto biased = [&](int32_t e) { return score[e] + w.bias[e]; };
    std::partial_sort(order, order + K, order + E, [&](int32_t x, int32_t y) {
      return biased(x) > biased(y) || (biased(x) == biased(y) && x < y);
    });
    std::copy(order, order + K, ids);
  }
  std::sort(ids, ids + K);
  float sum = 0.0f;
  for (int64_t k = 0; k < K; ++k) sum += score[ids[k]];
  sum += w.route_norm_eps;   // V4: + 0 (exact, sum > 0); V4.1: + 1e-20 (v4.1 §5.12)
  for (int64_t k = 0; k < K; ++k) weights[k] = score[ids[k]] / sum * float(c.routed_scaling_factor);
}

void moe_forward(const Model& m, const BlockWeights& b, const float* x, const int32_t* tokens, int64_t rows, float* out,
                 Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const MoeWeights& w = b.ffn;
  const int64_t D = c.hidden_size, E = w.n_experts, K = w.top_k;
  const float limit = float(c.swiglu_limit);
  Arena& A = s.main;
  ArenaScope scope(A);

  // Router logits of every row in one product.
  float* logits = A.alloc<float>(rows * E);
  linear({LinearKind::f32, w.gate_view, x, rows, logits}, A);
  int32_t* ids = A.alloc<int32_t>(rows * K);
  float* wts = A.alloc<float>(rows * K);
  for (int64_t t = 0; t < rows; ++t)
    route_token(m, w, b.hash_routed, logits + t * E, tokens[t], ids + t * K, wts + t * K, A);

  float* xq_rows = A.alloc<float>(rows * D);
  const LinearInput xq = act_quant_rows(x, rows, D, w.shared.w1.act_block, xq_rows);

  // Pairs grouped by expert (counting sort: experts ascending, then rows ascending), so each
  // token's f32 sum runs in the reference's order: experts by id, then the shared expert.
  int64_t* start = A.alloc<int64_t>(E + 1);
  std::fill(start, start + E + 1, 0);
  for (int64_t i = 0; i < rows * K; ++i) ++start[ids[i] + 1];
  for (int64_t e = 0; e < E; ++e) start[e + 1] += start[e];
  int64_t* fill = A.alloc<int64_t>(E);
  std::copy(start, start + E, fill);
  int64_t* pair_row = A.alloc<int64_t>(rows * K);
  float* pair_weight = A.alloc<float>(rows * K);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t p = fill[ids[t * K + k]]++;
      pair_row[p] = t;
      pair_weight[p] = wts[t * K + k];
    }

  float* acc = A.alloc<float>(rows * D);
  std::fill(acc, acc + rows * D, 0.0f);
  float* ones = A.alloc<float>(rows);
  std::fill(ones, ones + rows, 1.0f);
  float* y_shared = A.alloc<float>(rows * D);
  const int64_t I_shared = w.shared.w1.rows;
  ExpertRun shared{&w.shared, xq, ones, rows, A.alloc<float>(rows * I_shared), A.alloc<float>(rows * I_shared), y_shared};
  bool shared_done = false;

  // With an expert split (model/expert_split.h) only experts [own0, own1) run here, each writing
  // its rows straight into pair_y at its pairs' places; the exchange then brings the other
  // processes' rows, and the sum below visits every token's pairs in the same order as the
  // single-process path (experts ascending), so the output is bit-identical to it.
  ExpertSplit* split = m.expert_split.get();
  const int64_t own0 = split ? split->first() : 0, own1 = split ? split->last() : E;
  float* pair_y = split ? A.alloc<float>(rows * K * D) : nullptr;

  ExpertRun* runs = A.alloc<ExpertRun>(E + 1);
  for (int64_t e0 = own0; e0 < own1;) {
    // Experts [e0, e1) with at most kPairsPerRegion pairs (at least one expert).
    ArenaScope slice(A);
    int64_t count = 0, pairs = 0, e1 = e0;
    for (; e1 < own1; ++e1) {
      const int64_t n = start[e1 + 1] - start[e1];
      if (n == 0) continue;
      if (count > 0 && pairs + n > kPairsPerRegion) break;
      const ExpertWeights& ew = w.experts[size_t(e1)];
      const int64_t I = ew.w1.rows;
      ExpertRun r{&ew, {}, pair_weight + start[e1], n, A.alloc<float>(n * I), A.alloc<float>(n * I),
                  pair_y ? pair_y + start[e1] * D : A.alloc<float>(n * D)};
      if (rows == 1) {
        r.x = xq;
      } else {
        float* xe = A.alloc<float>(n * D);
        for (int64_t i = 0; i < n; ++i)
          std::copy(xq_rows + pair_row[start[e1] + i] * D, xq_rows + (pair_row[start[e1] + i] + 1) * D, xe + i * D);
        r.x = LinearInput::quantized(xe);
      }
      runs[count++] = r;
      pairs += n;
    }
    const int64_t routed = count;
    if (!shared_done) {   // the shared expert rides along with the first slice
      runs[count++] = shared;
      shared_done = true;
    }
    run_experts(runs, count, limit, A);
    for (int64_t k = 0; k < routed && !pair_y; ++k)
      add_pair_rows(acc, pair_row, start[runs[k].w - w.experts.data()], runs[k].y, runs[k].n, D);
    e0 = e1;
  }
  if (!shared_done) run_experts(&shared, 1, limit, A);
  if (split) {
    split->exchange(pair_y, start, E, rows, D);
    add_pair_rows(acc, pair_row, 0, pair_y, rows * K, D);
  }
  for (int64_t i = 0; i < rows * D; ++i) out[i] = round_bf16(acc[i] + y_shared[i]);
}

}  // namespace dsv4::model

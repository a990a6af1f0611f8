#include "model/hc.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/cuda_exp.h"
#include "kernels/cpu/cuda_rsqrt.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::model {

namespace {

// torch.sigmoid on the GPU: 1 / (1 + expf(−z)) with CUDA's expf. The pre weights it gives
// decide bf16 roundings of u, and a stream sum can land exactly on a bf16 tie, where one ulp of
// a weight picks the neighbour (kernels/cpu/cuda_exp.h).
float sigmoid(float z) { return 1.0f / (1.0f + kernels::cuda_expf(-z)); }

// Mixing coefficients live on the stack: n_hc is 4 in every V4 config (hc_mult), so (2 + n)·n = 24.
constexpr int64_t kMaxHc = 8;
constexpr int64_t kMaxMix = (2 + kMaxHc) * kMaxHc;

// mix[i] = (xf · fn[i]) · r with r = rsqrt(mean(xf²) + eps) over all n_hc·D values: the mean in
// the reference's reduction order, the matvec (a cuBLAS product) summed exactly (kernels/cpu/reduce.h).
// The mix_count exact dot products (sequential double sums of 16384 terms) run as interleaved
// chains (kernels::dot_accurate_many, same bits as dot_accurate), split over the threads when this
// token is alone (decode), with the mean of squares on the last thread.
void hc_mix(const HcWeights& w, const HcParams& p, const float* X, int64_t mix_count, float* mix) {
  const int64_t n = p.n_hc * p.dim;
  const float* rows[kMaxMix];
  float dots[kMaxMix];
  for (int64_t i = 0; i < mix_count; ++i) rows[i] = w.fn + i * n;
  float mean_sq = 0.0f;
  run_parallel(mix_count * n >= (int64_t(1) << 16), [&](int64_t id, int64_t nth) {
    const int64_t k0 = mix_count * id / nth, k1 = mix_count * (id + 1) / nth;
    kernels::dot_accurate_many(X, rows + k0, k1 - k0, n, dots + k0);
    if (id == nth - 1) mean_sq = kernels::torch_mean_squares(X, n);
  });
  const float r = kernels::cuda_rsqrt(mean_sq + p.norm_eps);
  for (int64_t i = 0; i < mix_count; ++i) mix[i] = dots[i] * r;
}

}  // namespace

// Sums in the reference's order: a row (the inner dimension) folds as a warp butterfly, a column
// (the middle dimension) left to right (kernels/cpu/reduce.h).
void sinkhorn(float* c, int64_t n, int iters, float eps) {
  auto rows_norm = [&] {
    for (int64_t j = 0; j < n; ++j) {
      const float s = kernels::torch_warp_sum(c + j * n, n);
      for (int64_t k = 0; k < n; ++k) c[j * n + k] /= (s + eps);
    }
  };
  auto cols_norm = [&] {
    for (int64_t k = 0; k < n; ++k) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += c[j * n + k];
      for (int64_t j = 0; j < n; ++j) c[j * n + k] /= (s + eps);
    }
  };
  for (int64_t j = 0; j < n; ++j) {   // row softmax, then + eps
    float mx = c[j * n];
    for (int64_t k = 1; k < n; ++k) mx = std::max(mx, c[j * n + k]);
    for (int64_t k = 0; k < n; ++k) c[j * n + k] = std::exp(c[j * n + k] - mx);
    const float s = kernels::torch_warp_sum(c + j * n, n);
    for (int64_t k = 0; k < n; ++k) c[j * n + k] = c[j * n + k] / s + eps;
  }
  cols_norm();
  for (int it = 1; it < iters; ++it) {
    rows_norm();
    cols_norm();
  }
}

void hc_mixes(const HcWeights& w, const HcParams& p, const float* X, float* pre, float* post, float* comb) {
  const int64_t n = p.n_hc;
  DSV4_CHECK(n <= kMaxHc && w.mix <= kMaxMix);
  float mix[kMaxMix];
  hc_mix(w, p, X, w.mix, mix);
  for (int64_t j = 0; j < n; ++j) {
    pre[j] = sigmoid(mix[j] * w.scale[0] + w.base[j]) + p.hc_eps;
    post[j] = 2.0f * sigmoid(mix[n + j] * w.scale[1] + w.base[n + j]);
  }
  for (int64_t i = 0; i < n * n; ++i) comb[i] = mix[2 * n + i] * w.scale[2] + w.base[2 * n + i];
  sinkhorn(comb, n, p.iters, p.hc_eps);
}

void hc_collapse(const HcParams& p, const float* X, const float* pre, float* u, float* u_sum) {
  const int64_t n = p.n_hc;
  for (int64_t d = 0; d < p.dim; ++d) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += pre[j] * X[j * p.dim + d];
    u[d] = round_bf16(s);
    if (u_sum) u_sum[d] = s;
  }
}

void hc_pre(const HcWeights& w, const HcParams& p, const float* X, float* u, float* post, float* comb,
            float* u_sum) {
  float pre[kMaxHc];
  hc_mixes(w, p, X, pre, post, comb);
  hc_collapse(p, X, pre, u, u_sum);
}

HcParams hc_params(const io::ModelConfig& c) {
  HcParams p;
  p.n_hc = c.hc_mult;
  p.dim = c.hidden_size;
  p.iters = int(c.hc_sinkhorn_iters);
  p.norm_eps = float(c.rms_norm_eps);
  p.hc_eps = float(c.hc_eps);
  return p;
}

void hc_post_rows(const HcParams& p, const float* out, const float* post, const float* comb, int64_t rows, float* X) {
  const int64_t n = p.n_hc, D = p.dim;
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float* Xt = X + t * n * D;
    hc_post(p, out + t * D, Xt, post + t * n, comb + t * n * n, Xt);   // in place
  });
}

void hc_post(const HcParams& p, const float* a, const float* R, const float* post, const float* comb, float* X_new) {
  const int64_t n = p.n_hc;
  DSV4_CHECK(n <= kMaxHc);
  // d outermost: every output at d is computed from the inputs at d before any is written, so
  // X_new may be R (in place).
  for (int64_t d = 0; d < p.dim; ++d) {
    float r[kMaxHc];
    for (int64_t j = 0; j < n; ++j) r[j] = R[j * p.dim + d];
    for (int64_t k = 0; k < n; ++k) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += comb[j * n + k] * r[j];
      X_new[k * p.dim + d] = round_bf16(post[k] * a[d] + s);
    }
  }
}

void hc_head(const HcWeights& w, const HcParams& p, const float* X, float* y) {
  const int64_t n = p.n_hc;
  DSV4_CHECK(n <= kMaxHc);
  float mix[kMaxHc];
  hc_mix(w, p, X, n, mix);
  for (int64_t j = 0; j < n; ++j) mix[j] = sigmoid(mix[j] * w.scale[0] + w.base[j]) + p.hc_eps;
  for (int64_t d = 0; d < p.dim; ++d) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += mix[j] * X[j * p.dim + d];
    y[d] = round_bf16(s);
  }
}

}  // namespace dsv4::model

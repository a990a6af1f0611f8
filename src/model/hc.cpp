#include "model/hc.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/cuda_rsqrt.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::model {

namespace {

float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// mix[i] = (xf · fn[i]) · r with r = rsqrt(mean(xf²) + eps) over all n_hc·D values: the mean in
// the reference's reduction order, the matvec (a cuBLAS product) summed exactly (kernels/cpu/reduce.h).
void hc_mix(const HcWeights& w, const HcParams& p, const float* X, int64_t mix_count, float* mix) {
  const int64_t n = p.n_hc * p.dim;
  const float r = kernels::cuda_rsqrt(kernels::torch_mean_squares(X, n) + p.norm_eps);
  for (int64_t i = 0; i < mix_count; ++i) mix[i] = kernels::dot_accurate(X, w.fn + i * n, n) * r;
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

void hc_pre(const HcWeights& w, const HcParams& p, const float* X, float* u, float* post, float* comb) {
  const int64_t n = p.n_hc;
  thread_local std::vector<float> mix, pre;   // per-token scratch, reused (hc_pre runs per token)
  mix.resize(size_t(w.mix));
  hc_mix(w, p, X, w.mix, mix.data());
  pre.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    pre[size_t(j)] = sigmoid(mix[size_t(j)] * w.scale[0] + w.base[j]) + p.hc_eps;
    post[j] = 2.0f * sigmoid(mix[size_t(n + j)] * w.scale[1] + w.base[n + j]);
  }
  for (int64_t i = 0; i < n * n; ++i) comb[i] = mix[size_t(2 * n + i)] * w.scale[2] + w.base[2 * n + i];
  sinkhorn(comb, n, p.iters, p.hc_eps);
  for (int64_t d = 0; d < p.dim; ++d) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += pre[size_t(j)] * X[j * p.dim + d];
    u[d] = round_bf16(s);
  }
}

void hc_post(const HcParams& p, const float* a, const float* R, const float* post, const float* comb, float* X_new) {
  const int64_t n = p.n_hc;
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t d = 0; d < p.dim; ++d) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += comb[j * n + k] * R[j * p.dim + d];
      X_new[k * p.dim + d] = round_bf16(post[k] * a[d] + s);
    }
  }
}

void hc_head(const HcWeights& w, const HcParams& p, const float* X, float* y) {
  const int64_t n = p.n_hc;
  thread_local std::vector<float> mix;
  mix.resize(static_cast<size_t>(n));
  hc_mix(w, p, X, n, mix.data());
  for (int64_t j = 0; j < n; ++j) mix[size_t(j)] = sigmoid(mix[size_t(j)] * w.scale[0] + w.base[j]) + p.hc_eps;
  for (int64_t d = 0; d < p.dim; ++d) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += mix[size_t(j)] * X[j * p.dim + d];
    y[d] = round_bf16(s);
  }
}

}  // namespace dsv4::model

// Row reductions in the order PyTorch's CUDA reduction kernel adds, so that sums feeding bf16
// and FP8 roundings come out bit for bit as in the reference.
//
// The reference normalises with `x.square().mean(-1)` on the GPU. Its RMS values decide bf16
// rounding ties of every RMSNorm output and the FP8 activation quantisation amplifies each flip
// (a kv element one ulp off changes the attention of the next 128 positions), so neither a
// sequential nor an exact sum will do. The order below was established on an H100 (torch 2.11,
// CUDA 13) by matching every row of random inputs for n = 128 … 16384 bit for bit, for the
// row counts of a prefill (≥ 16 rows; a single-row call is laid out differently on the GPU —
// that only moves the reference's own decode, which is compared statistically):
//
//   * elements are loaded as vectors of V (V = 4 for f32 input, 8 for bf16 input);
//   * T lanes (T = 32, or 32 × 16 when n / 32 ≥ 256) each keep V accumulators: lane t adds
//     vectors t, t + T, t + 2T, … element-wise, then folds its accumulators left to right;
//   * the 32 lanes of each group fold as a tree with strides 16, 8, 4, 2, 1 (lane l += lane l + s),
//     then the 16 groups (if any) fold the same way with strides 8, 4, 2, 1.
//
// Inner reductions of width ≤ 32 that PyTorch does within one warp (softmax, small sums) use the
// butterfly tree of torch_warp_sum.
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// Σ f(x[i]) in the reference's order; f maps one element to the f32 value being summed.
template <int V, class F>
float torch_row_sum(const float* x, int64_t n, F f) {
  int64_t lanes = 32, groups = (n / 32 >= 256) ? 16 : 1;
  while (lanes > 1 && lanes * V > n) lanes /= 2;   // short rows: fewer active lanes
  const int64_t threads = lanes * groups, stride = threads * V;
  float acc[32 * 16 * V];
  for (int64_t j = 0; j < stride; ++j) acc[j] = 0.0f;
  int64_t base = 0;
  for (; base + stride <= n; base += stride)
    for (int64_t j = 0; j < stride; ++j) acc[j] += f(x[base + j]);
  for (int64_t j = 0; base + j < n; ++j) acc[j] += f(x[base + j]);   // ragged tail (unused by V4 shapes)
  float val[32 * 16];
  for (int64_t t = 0; t < threads; ++t) {
    float v = acc[t * V];
    for (int i = 1; i < V; ++i) v += acc[t * V + i];
    val[t] = v;
  }
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t s = lanes / 2; s >= 1; s /= 2)
      for (int64_t l = 0; l < s; ++l) val[g * lanes + l] += val[g * lanes + l + s];
  for (int64_t s = groups / 2; s >= 1; s /= 2)
    for (int64_t g = 0; g < s; ++g) val[g * lanes] += val[(g + s) * lanes];
  return val[0];
}

// mean(x²) of an f32 row as `x.square().mean(-1)` (the mean multiplies by 1/n).
inline float torch_mean_squares(const float* x, int64_t n) {
  return torch_row_sum<4>(x, n, [](float v) { return v * v; }) * (1.0f / float(n));
}

// Σ of n ≤ 32 values folded as a warp butterfly (strides n/2, …, 1): (x0 + x2) + (x1 + x3) for n = 4.
inline float torch_warp_sum(const float* x, int64_t n) {
  if (n > 32 || (n & (n - 1)) != 0) {   // not a warp-shaped width: plain left-to-right sum
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
  }
  float v[32];
  for (int64_t i = 0; i < n; ++i) v[i] = x[i];
  for (int64_t s = n / 2; s >= 1; s /= 2)
    for (int64_t l = 0; l < s; ++l) v[l] += v[l + s];
  return v[0];
}

// Σ a[i]·b[i] accumulated in double and rounded once: for products whose GPU order is a cuBLAS
// detail we cannot observe, the exact sum lands closest to it.
inline float dot_accurate(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

// out[k] = dot_accurate(a, rows[k], n) for k < count, bit for bit: each sum is the same
// sequential double chain, but G chains advance together, so the loop runs at the adder's
// throughput instead of its latency (one chain: ~4 cycles per element).
template <int G>
inline void dot_accurate_group(const float* a, const float* const* rows, int64_t n, float* out) {
  double s[G] = {};
  const float* r[G];
  #pragma GCC unroll 8
  for (int k = 0; k < G; ++k) r[k] = rows[k];
  for (int64_t i = 0; i < n; ++i) {
    const double ai = double(a[i]);
    #pragma GCC unroll 8
    for (int k = 0; k < G; ++k) s[k] += ai * double(r[k][i]);
  }
  for (int k = 0; k < G; ++k) out[k] = float(s[k]);
}

// Passes of at most 8 chains, as even as possible (a pass costs about the same from 1 to 4
// chains, where the adder latency bounds it, and grows slowly beyond).
inline void dot_accurate_many(const float* a, const float* const* rows, int64_t count, int64_t n, float* out) {
  const int64_t passes = (count + 7) / 8;
  for (int64_t p = 0, k = 0; p < passes; ++p) {
    const int64_t g = (count - k) / (passes - p);
    switch (g) {
      case 1: dot_accurate_group<1>(a, rows + k, n, out + k); break;
      case 2: dot_accurate_group<2>(a, rows + k, n, out + k); break;
      case 3: dot_accurate_group<3>(a, rows + k, n, out + k); break;
      case 4: dot_accurate_group<4>(a, rows + k, n, out + k); break;
      case 5: dot_accurate_group<5>(a, rows + k, n, out + k); break;
      case 6: dot_accurate_group<6>(a, rows + k, n, out + k); break;
      case 7: dot_accurate_group<7>(a, rows + k, n, out + k); break;
      default: dot_accurate_group<8>(a, rows + k, n, out + k); break;
    }
    k += g;
  }
}

}  // namespace dsv4::kernels

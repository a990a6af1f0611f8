// RMS norms of the reference (spec §4.1).
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// Weighted: out = bf16(w · (x · rsqrt(mean(x²) + eps))), f32 inside. w holds f32 weights.
// `out` may alias `x`.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

// Unweighted per-head q norm in bf16 arithmetic: squares, mean, +eps, rsqrt and the product
// each rounded to bf16 (spec §4.1, review note 2). In place.
void head_rms_norm_bf16(float* q, int64_t n, float eps);

}  // namespace dsv4::kernels

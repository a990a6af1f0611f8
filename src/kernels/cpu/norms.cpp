#include "kernels/cpu/norms.h"

#include <cmath>

#include "core/dtype.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::kernels {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float r = 1.0f / std::sqrt(sum_squares_accurate(x, n) / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(w[i] * (x[i] * r));
}

void head_rms_norm_bf16(float* q, int64_t n, float eps) {
  double sum = 0;   // accurate sum of the bf16 squares (see reduce.h)
  for (int64_t i = 0; i < n; ++i) sum += double(round_bf16(q[i] * q[i]));
  const float mean = round_bf16(float(sum) / float(n));
  const float v = round_bf16(mean + eps);
  const float r = round_bf16(1.0f / std::sqrt(v));
  for (int64_t i = 0; i < n; ++i) q[i] = round_bf16(q[i] * r);
}

}  // namespace dsv4::kernels

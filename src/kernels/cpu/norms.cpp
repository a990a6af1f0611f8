#include "kernels/cpu/norms.h"

#include <cmath>

#include "core/dtype.h"
#include "kernels/cpu/cuda_rsqrt.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::kernels {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float r = cuda_rsqrt(torch_mean_squares(x, n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(w[i] * (x[i] * r));
}

void head_rms_norm_bf16(float* q, int64_t n, float eps) {
  // bf16 squares summed in the reference's order for bf16 input (8-wide vectors, reduce.h).
  const float sum = torch_row_sum<8>(q, n, [](float v) { return round_bf16(v * v); });
  const float mean = round_bf16(sum * (1.0f / float(n)));
  const float v = round_bf16(mean + eps);
  const float r = round_bf16(cuda_rsqrt(v));
  for (int64_t i = 0; i < n; ++i) q[i] = round_bf16(q[i] * r);
}

}  // namespace dsv4::kernels

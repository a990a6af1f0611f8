#include "kernels/cpu/quant_sim.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace dsv4::kernels {

namespace {
// f32(1/448) = 0x3B124925 and f32(1/6): the reference multiplies by the rounded reciprocal.
constexpr float kInvE4m3Max = 1.0f / 448.0f;
constexpr float kInvE2m1Max = 1.0f / 6.0f;
constexpr float kAmaxFloorFp8 = 1e-4f;
constexpr float kAmaxFloorFp4 = 6.0f * 0x1p-126f;   // keeps s normal for all-zero blocks
}  // namespace

void act_quant_fp8(float* x, int64_t n, int block) {
  for (int64_t b = 0; b < n; b += block) {
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    amax = std::max(amax, kAmaxFloorFp8);
    const float s = pow2_ceil(amax * kInvE4m3Max);
    for (int i = 0; i < block; ++i) {
      const float q = std::clamp(x[b + i] / s, -448.0f, 448.0f);
      x[b + i] = round_e4m3(q) * s;
    }
  }
}

void fp4_sim(float* x, int64_t n, int block) {
  for (int64_t b = 0; b < n; b += block) {
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    amax = std::max(amax, kAmaxFloorFp4);
    const float s = pow2_ceil(amax * kInvE2m1Max);
    for (int i = 0; i < block; ++i) {
      const float q = std::clamp(x[b + i] / s, -6.0f, 6.0f);
      x[b + i] = round_bf16(round_e2m1(q) * s);
    }
  }
}

void hadamard_rotate(float* x, int64_t d) {
  for (int64_t h = 1; h < d; h *= 2) {
    for (int64_t i = 0; i < d; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float scale = float(1.0 / std::sqrt(double(d)));
  for (int64_t i = 0; i < d; ++i) x[i] = round_bf16(x[i] * scale);
}

}  // namespace dsv4::kernels

// The GPU-reference numerics reproduced on the CPU: CUDA's rsqrtf, PyTorch's reduction orders and
// the complex product of RoPE. Each expectation was read off an H100 (torch 2.11, CUDA 13).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "kernels/cpu/cuda_rsqrt.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/rope.h"

namespace dsv4::kernels {
namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

int32_t ulps_from_correctly_rounded(float x) {
  const float r = cuda_rsqrt(x), c = float(1.0 / std::sqrt(double(x)));
  int32_t a, b;
  std::memcpy(&a, &r, 4);
  std::memcpy(&b, &c, 4);
  return a - b;
}

// The embedded table is intact: over [1, 4) the deviations have exactly the histogram the probe
// printed on the GPU (tools/cuda_math/probe_rsqrtf.py).
TEST(CudaRsqrt, DeviationHistogramMatchesTheGpuProbe) {
  std::map<int32_t, int64_t> hist;
  for (uint32_t b = 0x3F800000u; b < 0x40800000u; ++b) hist[ulps_from_correctly_rounded(from_bits(b))]++;
  const std::map<int32_t, int64_t> gpu = {{-2, 8}, {-1, 2344391}, {0, 13143086}, {1, 1289731}};
  EXPECT_EQ(hist, gpu);
}

// rsqrtf(x·4^k) = rsqrtf(x)·2^-k on the GPU; the emulation keeps that for tiny and huge inputs.
TEST(CudaRsqrt, ScalesByPowersOfFour) {
  for (uint32_t b = 0x3F800000u; b < 0x40800000u; b += 4099) {
    const float x = from_bits(b), r = cuda_rsqrt(x);
    for (int k : {-60, -7, -1, 1, 9, 60}) EXPECT_EQ(cuda_rsqrt(std::ldexp(x, 2 * k)), std::ldexp(r, -k)) << x << " k " << k;
  }
  EXPECT_EQ(cuda_rsqrt(4.0f), 0.5f);
  EXPECT_EQ(cuda_rsqrt(0.25f), 2.0f);
}

// A row whose sum depends on the order: 2^24 absorbs a 1 unless two 1s meet first. The lane
// layout (4-wide vectors, 32 lanes, folded 16, 8, 4, 2, 1) decides which 1s meet.
TEST(TorchRowSum, FollowsTheGpuLaneLayout) {
  std::vector<float> x(128, 0.0f);
  x[0] = 16777216.0f;   // lane 0, accumulator 0
  x[1] = 1.0f;          // lane 0, accumulator 1: folded into lane 0 first -> absorbed (2^24 + 1)
  x[64] = 1.0f;         // lane 16, accumulator 0
  x[65] = 1.0f;         // lane 16, accumulator 1 -> lane 16 holds 2, added to lane 0 at stride 16
  const float s = torch_row_sum<4>(x.data(), 128, [](float v) { return v; });
  EXPECT_EQ(s, 16777218.0f);
  float seq = 0.0f;
  for (float v : x) seq += v;
  EXPECT_EQ(seq, 16777216.0f);   // a left-to-right sum loses all three 1s
}

TEST(TorchRowSum, MeanOfSquaresOfAConstantRow) {
  std::vector<float> x(4096, 3.0f);
  EXPECT_EQ(torch_mean_squares(x.data(), 4096), 9.0f);
  std::vector<float> y(16384, 0.5f);   // the 16-group layout of long rows
  EXPECT_EQ(torch_mean_squares(y.data(), 16384), 0.25f);
}

TEST(TorchWarpSum, FoldsHalvesFirst) {
  const float x[4] = {16777216.0f, 1.0f, -16777216.0f, 1.0f};
  EXPECT_EQ(torch_warp_sum(x, 4), 2.0f);   // (x0 + x2) + (x1 + x3)
}

// The reference's measured YaRN table differs from correctly rounded powers at pair 24, where
// CUDA's powf(160000, 0.75) is not the exact 8000.
TEST(Rope, MeasuredYarnTableForV4) {
  const RopeFreqs f = make_rope_freqs(64, 160000, true, 16, 65536, 32, 1);
  uint32_t bits;
  std::memcpy(&bits, &f.inv_freq[24], 4);
  EXPECT_EQ(bits, 0x37a3d708u);
  const float f8000 = 1.0f / 8000.0f;
  EXPECT_NE(f.inv_freq[24], f8000 / 16.0f * 0.9f + f8000 * (1.0f - 0.9f));
}

// (a + ib)(c + is) with one rounding per component, as the GPU's fused multiply-add gives it:
// here the separately rounded a·c − b·s would come out one bf16 ulp lower.
TEST(Rope, ComplexProductUsesFusedMultiplyAdd) {
  const float cs[2] = {0x1.707712p-2f, 0x1.eb2d02p-1f};
  std::vector<float> v = {0x1.ap+0f, 0x1.38p-1f};
  rope_apply(v.data(), 2, 2, cs, false);
  EXPECT_EQ(v[0], 0x1.16p-13f);
}

}  // namespace
}  // namespace dsv4::kernels

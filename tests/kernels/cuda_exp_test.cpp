// kernels::cuda_expf: libdevice's range reduction reproduced, 2^r correctly rounded in place of
// ex2.approx (not yet measured on a GPU, tools/cuda_math/probe_ex2.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/dtype.h"
#include "kernels/cpu/cuda_exp.h"

namespace dsv4::kernels {
namespace {

int64_t ulps_apart(float a, float b) { return std::llabs(int64_t(f32_bits(a)) - int64_t(f32_bits(b))); }

// The reduction's f32 rounding of r moves the result by at most ~0.35 ulp, so it stays within one
// ulp of the correctly rounded e^a, over the range softmax and sigmoid arguments take.
TEST(CudaExpf, WithinOneUlpOfCorrectlyRounded) {
  int64_t differ = 0, total = 0;
  for (float a = -87.0f; a < 88.0f; a += 0.0137f, ++total) {
    const float c = float(std::exp(double(a)));
    EXPECT_LE(ulps_apart(cuda_expf(a), c), 1) << a;
    differ += cuda_expf(a) != c;
  }
  EXPECT_GT(differ, 0);              // it is not libm's expf...
  EXPECT_LT(differ, total / 4);      // ...but differs only near rounding midpoints
}

// The case that decided block 4 of fixtures/tiny-b-layers: e^a lies 0.49 ulp above the lower
// neighbour, and the reduced argument rounds below the midpoint. The reference's sigmoid weight
// (one ulp above libm's) needs the lower value.
TEST(CudaExpf, RoundsNearMidpointsAsTheReductionDoes) {
  const float a = -0x1.8faa88p-4f;
  EXPECT_EQ(float(std::exp(double(a))), 0x1.d066d6p-1f);
  EXPECT_EQ(cuda_expf(a), 0x1.d066d4p-1f);
}

TEST(CudaExpf, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cuda_expf(0.0f), 1.0f);
  EXPECT_EQ(cuda_expf(1.0f), float(std::exp(1.0)));
  EXPECT_EQ(cuda_expf(-inf), 0.0f);
  EXPECT_EQ(cuda_expf(inf), inf);
  EXPECT_EQ(cuda_expf(100.0f), inf);
  EXPECT_EQ(cuda_expf(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(cuda_expf(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace dsv4::kernels

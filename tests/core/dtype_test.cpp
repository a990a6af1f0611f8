#include "core/dtype.h"

#include <gtest/gtest.h>

namespace dsv4 {

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): goes up.
  EXPECT_EQ(round_bf16(1.0f + 3 * 0x1p-8f), 1.015625f);
  EXPECT_EQ(round_bf16(-2.5f), -2.5f);
  EXPECT_TRUE(std::isnan(round_bf16(std::nanf(""))));
}

TEST(DType, E4m3DecodesNormalsSubnormalsAndNaN) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);                // exp 7, man 0
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);              // max normal 1.75 * 2^8
  EXPECT_EQ(e4m3_to_f32(0xfe), -448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), 0x1p-9f);             // smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(e4m3_to_f32(0x08), 0x1p-6f);             // smallest normal
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7f)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xff)));
}

TEST(DType, E4m3EncodeRoundTripsEveryCode) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;   // NaN
    const float v = e4m3_to_f32(uint8_t(b));
    EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(v)), v) << b;
  }
}

TEST(DType, E4m3RoundsTiesToEven) {
  // Between 1.0 (man 0) and 1.125 (man 1): 1.0625 ties to 1.0; 1.1875 ties to 1.25 (man 2).
  EXPECT_EQ(round_e4m3(1.0625f), 1.0f);
  EXPECT_EQ(round_e4m3(1.1875f), 1.25f);
  EXPECT_EQ(round_e4m3(1.07f), 1.125f);
  // Subnormal ties: 1.5 * 2^-9 -> 2 * 2^-9 (even), 0.5 * 2^-9 -> 0.
  EXPECT_EQ(round_e4m3(1.5f * 0x1p-9f), 2 * 0x1p-9f);
  EXPECT_EQ(round_e4m3(0.5f * 0x1p-9f), 0.0f);
  EXPECT_EQ(round_e4m3(460.0f), 448.0f);   // saturates
  EXPECT_EQ(round_e4m3(-1000.0f), -448.0f);
}

TEST(DType, E8m0DecodesPowersOfTwo) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(120), 0x1p-7f);
  EXPECT_EQ(e8m0_to_f32(254), 0x1p127f);
  EXPECT_EQ(e8m0_to_f32(0), 0x1p-127f);    // bit pattern 0x00400000
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
}

TEST(DType, E2m1TableAndRounding) {
  const float grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(e2m1_to_f32(uint8_t(i)), grid[i]);
    EXPECT_EQ(e2m1_to_f32(uint8_t(i | 8)), -grid[i]);
  }
  EXPECT_EQ(round_e2m1(0.25f), 0.0f);   // ties to even code
  EXPECT_EQ(round_e2m1(0.75f), 1.0f);
  EXPECT_EQ(round_e2m1(1.25f), 1.0f);
  EXPECT_EQ(round_e2m1(1.75f), 2.0f);
  EXPECT_EQ(round_e2m1(2.5f), 2.0f);
  EXPECT_EQ(round_e2m1(3.5f), 4.0f);
  EXPECT_EQ(round_e2m1(5.0f), 4.0f);
  EXPECT_EQ(round_e2m1(5.01f), 6.0f);
  EXPECT_EQ(round_e2m1(-7.0f), -6.0f);
}

TEST(DType, Pow2CeilFromBits) {
  EXPECT_EQ(pow2_ceil(1.0f), 1.0f);
  EXPECT_EQ(pow2_ceil(1.0000001f), 2.0f);
  EXPECT_EQ(pow2_ceil(0.75f), 1.0f);
  EXPECT_EQ(pow2_ceil(0x1p-20f), 0x1p-20f);
}

TEST(DType, ParsesSafetensorsNames) {
  DType t;
  ASSERT_TRUE(parse_dtype("F8_E4M3", &t));
  EXPECT_EQ(t, DType::fp8_e4m3);
  ASSERT_TRUE(parse_dtype("I8", &t));   // the label of FP4 in official checkpoints, still I8 here
  EXPECT_EQ(t, DType::i8);
  EXPECT_FALSE(parse_dtype("F4", &t));
  // fp4_e2m1 has a name for messages but no header spelling.
  EXPECT_STREQ(dtype_name(DType::fp4_e2m1), "FP4_E2M1");
  EXPECT_FALSE(parse_dtype(dtype_name(DType::fp4_e2m1), &t));
}

TEST(DType, SizesCountPackedFp4AsHalfBytes) {
  EXPECT_EQ(dtype_bytes(DType::i64, 3), 24u);
  EXPECT_EQ(dtype_bytes(DType::bf16, 5), 10u);
  EXPECT_EQ(dtype_bytes(DType::fp4_e2m1, 64), 32u);
  EXPECT_EQ(dtype_bytes(DType::fp4_e2m1, 0), 0u);
  EXPECT_EQ(dtype_align(DType::f32), 4u);
  EXPECT_EQ(dtype_align(DType::fp4_e2m1), 1u);
}

}  // namespace dsv4

// Numeric primitives against hand-computed values (spec §4).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/sparse_attn.h"

namespace dsv4::kernels {

TEST(ActQuant, ScaleIsPowerOfTwoAboveAmaxOver448) {
  // amax = 448 -> t = 448 * f32(1/448) rounds to exactly 1 -> s = 1: values are plain E4M3.
  std::vector<float> x(128, 0.0f);
  x[0] = 448.0f;
  x[1] = 1.0625f;    // E4M3 tie between 1.0 and 1.125 -> 1.0 (even mantissa)
  x[2] = -3.3f;      // nearest E4M3 is -3.25
  act_quant_fp8(x.data(), 128, 128);
  EXPECT_EQ(x[0], 448.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[2], -3.25f);
}

TEST(ActQuant, AmaxJustAboveBoundaryDoublesTheScale) {
  std::vector<float> x(64, 0.0f);
  x[0] = 449.0f;     // t = 449/448 > 1 -> s = 2: 449/2 = 224.5 -> E4M3 224 -> 448
  x[1] = 3.0f;       // 3/2 = 1.5 exactly representable -> 3
  x[2] = 1.1f;       // 0.55 -> E4M3 0.5625 (grid 2^-4 at [0.5,1)) -> 1.125
  act_quant_fp8(x.data(), 64, 64);
  EXPECT_EQ(x[0], 448.0f);
  EXPECT_EQ(x[1], 3.0f);
  EXPECT_EQ(x[2], 1.125f);
}

TEST(ActQuant, AllZeroBlockStaysZeroWithFloorScale) {
  std::vector<float> x(128, 0.0f);
  act_quant_fp8(x.data(), 128, 128);
  for (float v : x) EXPECT_EQ(v, 0.0f);
}

TEST(ActQuant, BlocksAreIndependent) {
  std::vector<float> x(256, 0.0f);
  x[0] = 1000.0f;          // block 0 scale 4
  x[1] = 1.0f;             // 1/4 = 0.25 exact -> 1
  x[128] = 0.01f;          // block 1: s = 2^ceil(log2(0.01/448)) = 2^-15 -> 0.01 rounds on E4M3 grid
  act_quant_fp8(x.data(), 256, 128);
  EXPECT_EQ(x[1], 1.0f);
  const float s = 0x1p-15f;
  EXPECT_EQ(x[128], round_e4m3(0.01f / s) * s);
  EXPECT_NE(x[128], 0.01f);
}

TEST(Fp4Sim, RoundsOnTheE2m1GridWithPow2Scale) {
  std::vector<float> x(32, 0.0f);
  x[0] = 6.0f;    // s = 1
  x[1] = 2.5f;    // tie -> 2 (even code)
  x[2] = 0.3f;    // -> 0.5
  x[3] = -5.5f;   // -> -6
  fp4_sim(x.data(), 32, 32);
  EXPECT_EQ(x[0], 6.0f);
  EXPECT_EQ(x[1], 2.0f);
  EXPECT_EQ(x[2], 0.5f);
  EXPECT_EQ(x[3], -6.0f);
}

TEST(Hadamard, MatchesSylvesterMatrixAndIsOrthonormal) {
  const int d = 8;
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> expect(d);
  for (int i = 0; i < d; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += ((__builtin_popcount(i & j) & 1) ? -1.0 : 1.0) * x[size_t(j)];
    expect[size_t(i)] = round_bf16(float(s / std::sqrt(double(d))));
  }
  hadamard_rotate(x.data(), d);
  for (int i = 0; i < d; ++i) EXPECT_EQ(x[size_t(i)], expect[size_t(i)]) << i;
}

TEST(Rope, YarnCorrectionRangeForFlash) {
  // spec §4.6: base 160000, factor 16, original 65536, beta 32/1 -> low 15, high 25.
  const RopeFreqs plain = make_rope_freqs(64, 160000, false, 1, 65536, 32, 1);
  const RopeFreqs yarn = make_rope_freqs(64, 160000, true, 16, 65536, 32, 1);
  for (int i = 0; i <= 15; ++i) EXPECT_EQ(yarn.inv_freq[size_t(i)], plain.inv_freq[size_t(i)]) << i;
  for (int i = 25; i < 32; ++i) EXPECT_FLOAT_EQ(yarn.inv_freq[size_t(i)], plain.inv_freq[size_t(i)] / 16) << i;
  // pair 20 blends half way: ramp = (20 - 15) / 10.
  EXPECT_NEAR(yarn.inv_freq[20], plain.inv_freq[20] * (0.5f / 16 + 0.5f), 1e-9f);
  EXPECT_EQ(plain.inv_freq[0], 1.0f);
}

TEST(Rope, InverseRotationRestoresTheInput) {
  const RopeFreqs f = make_rope_freqs(64, 10000, false, 1, 65536, 32, 1);
  std::vector<float> cs(64);
  rope_angles(f, 1048575, cs.data());   // t = 2^20 - 1
  std::vector<float> v(128), orig;
  for (int i = 0; i < 128; ++i) v[size_t(i)] = round_bf16(std::sin(0.37f * float(i)) * 3.0f);
  orig = v;
  rope_apply(v.data(), 128, 64, cs.data(), false);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(v[size_t(i)], orig[size_t(i)]);   // non-rope prefix untouched
  rope_apply(v.data(), 128, 64, cs.data(), true);
  for (int i = 64; i < 128; ++i) EXPECT_NEAR(v[size_t(i)], orig[size_t(i)], 0.03f) << i;  // two bf16 roundings
}

TEST(RmsNorm, WeightedNormMatchesFormula) {
  std::vector<float> x = {1, -2, 3, -4}, w = {1, 0.5f, 2, 1}, out(4);
  rms_norm(x.data(), w.data(), 4, 1e-6f, out.data());
  const float r = 1.0f / std::sqrt((1 + 4 + 9 + 16) / 4.0f + 1e-6f);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[size_t(i)], round_bf16(w[size_t(i)] * (x[size_t(i)] * r)));
}

TEST(SparseAttention, SinkOnlyInTheDenominator) {
  // One entry: o = bf16(v · e^0 / (e^0 + e^(sink - z))).
  const int dim = 4;
  std::vector<float> q = {1, 0, 0, 0}, kv = {2, 1, 0, -1}, out(dim);
  const float sink_small = -1000.0f;
  attention_with_sink(q.data(), 1, kv.data(), 1, 1, dim, 0.5f, &sink_small, out.data());
  for (int d = 0; d < dim; ++d) EXPECT_EQ(out[size_t(d)], kv[size_t(d)]);   // plain softmax
  const float sink_big = 1000.0f;
  attention_with_sink(q.data(), 1, kv.data(), 1, 1, dim, 0.5f, &sink_big, out.data());
  for (int d = 0; d < dim; ++d) EXPECT_NEAR(out[size_t(d)], 0.0f, 1e-30f);   // output -> 0
}

}  // namespace dsv4::kernels

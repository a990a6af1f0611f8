// The packed FP4 storage of the V4.1 caches (v4.1 §4.4, §8.1; v4.1 §13 item 6): packing rounds as
// the reference's in-place simulation and unpacking gives its values back exactly.
#include "kernels/cpu/fp4_pack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/quant_sim.h"

namespace dsv4::kernels {
namespace {

std::vector<float> bf16_normals(int64_t n, float scale, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = round_bf16(d(g));
  return v;
}

TEST(Fp4Pack, E8m0RoundTripEqualsTheSimulation) {
  for (float scale : {1e-30f, 1e-3f, 1.0f, 300.0f}) {
    std::vector<float> x = bf16_normals(128, scale, 7), sim = x, out(128);
    fp4_sim(sim.data(), 128, 32);
    std::vector<uint8_t> codes(64), scales(4);
    fp4_e8m0_pack(x.data(), 128, codes.data(), scales.data());
    fp4_e8m0_unpack(codes.data(), scales.data(), 128, out.data());
    EXPECT_EQ(0, std::memcmp(out.data(), sim.data(), sim.size() * 4)) << scale;
  }
  EXPECT_EQ(fp4_e8m0_bytes(128), 68);   // v4.1 §8.1: an index key is 64 B + 4 E8M0
}

TEST(Fp4Pack, E4m3GroupOf16) {
  EXPECT_EQ(fp4_e4m3_bytes(512), 288);   // v4.1 §8.1: a compressed entry is 256 B + 32 E4M3
  // An all-zero group: scale floor 6·2^-9 / 6 = 2^-9, the smallest E4M3 subnormal (code 1).
  std::vector<float> zero(16, 0.0f), out(16, 1.0f);
  uint8_t codes[8], scale;
  fp4_e4m3_pack(zero.data(), 16, codes, &scale);
  EXPECT_EQ(scale, 1);
  fp4_e4m3_unpack(codes, &scale, 16, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
  // amax 6.5: s = e4m3(6.5/6 = 1.0833) = 1.125 (RNE on 3 mantissa bits: 1.0833 -> 1.125).
  std::vector<float> x(16, 0.0f);
  x[0] = 6.5f;
  x[1] = -0.3f;
  fp4_e4m3_pack(x.data(), 16, codes, &scale);
  EXPECT_EQ(e4m3_to_f32(scale), 1.125f);
  fp4_e4m3_unpack(codes, &scale, 16, out.data());
  EXPECT_EQ(out[0], 6.75f);      // 6.5/1.125 = 5.78 -> 6 -> 6.75
  EXPECT_EQ(out[1], -0.5625f);   // -0.3/1.125 = -0.267 -> -0.5 -> -0.5625
  // A scale rounded below amax/6 saturates the largest element at ±6·s: amax 6.2 -> s = e4m3(1.0333) = 1.0.
  x[0] = -6.2f;
  fp4_e4m3_pack(x.data(), 16, codes, &scale);
  EXPECT_EQ(e4m3_to_f32(scale), 1.0f);
  fp4_e4m3_unpack(codes, &scale, 16, out.data());
  EXPECT_EQ(out[0], -6.0f);
}

TEST(Fp4Pack, E4m3ValuesAreBf16AndSimMatchesPackUnpack) {
  std::vector<float> x = bf16_normals(512, 2.0f, 11), sim = x, out(512);
  std::vector<uint8_t> buf(size_t(fp4_e4m3_bytes(512)));
  fp4_e4m3_pack(x.data(), 512, buf.data(), buf.data() + 256);
  fp4_e4m3_unpack(buf.data(), buf.data() + 256, 512, out.data());
  fp4_e4m3_sim(sim.data(), 512);
  EXPECT_EQ(0, std::memcmp(out.data(), sim.data(), sim.size() * 4));
  for (float v : out) EXPECT_EQ(v, round_bf16(v));
}

}  // namespace
}  // namespace dsv4::kernels

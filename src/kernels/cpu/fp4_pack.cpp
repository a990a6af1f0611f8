#include "kernels/cpu/fp4_pack.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace dsv4::kernels {

namespace {

constexpr float kInvE2m1Max = 1.0f / 6.0f;            // f32(1/6), as fp4_sim (quant_sim.cpp)
constexpr float kAmaxFloorE8m0 = 6.0f * 0x1p-126f;    // keeps s normal for all-zero groups
constexpr float kAmaxFloorE4m3 = 6.0f * 0x1p-9f;      // keeps s >= the smallest E4M3 subnormal

// Codes of one group of `g` elements divided by s (true f32 division, v4.1 §4.4).
void put_codes(const float* x, int64_t g, float s, uint8_t* codes) {
  for (int64_t i = 0; i < g; i += 2) {
    const uint8_t lo = f32_to_e2m1(std::clamp(x[i] / s, -6.0f, 6.0f));
    const uint8_t hi = f32_to_e2m1(std::clamp(x[i + 1] / s, -6.0f, 6.0f));
    codes[i / 2] = uint8_t(lo | (hi << 4));
  }
}

void get_values(const uint8_t* codes, int64_t g, float s, float* out) {
  for (int64_t i = 0; i < g; i += 2) {
    out[i] = round_bf16(e2m1_to_f32(codes[i / 2] & 0xf) * s);
    out[i + 1] = round_bf16(e2m1_to_f32(codes[i / 2] >> 4) * s);
  }
}

float group_amax(const float* x, int64_t g) {
  float amax = 0.0f;
  for (int64_t i = 0; i < g; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

void fp4_e4m3_pack(const float* x, int64_t n, uint8_t* codes, uint8_t* scales) {
  const int64_t g = kFp4E4m3Group;
  for (int64_t b = 0; b < n / g; ++b) {
    const float amax = std::max(group_amax(x + b * g, g), kAmaxFloorE4m3);
    scales[b] = f32_to_e4m3(amax / 6.0f);   // the CPU port divides by 6 (v4.1 §4.4, §14 U2)
    put_codes(x + b * g, g, e4m3_to_f32(scales[b]), codes + b * g / 2);
  }
}

void fp4_e4m3_unpack(const uint8_t* codes, const uint8_t* scales, int64_t n, float* out) {
  const int64_t g = kFp4E4m3Group;
  for (int64_t b = 0; b < n / g; ++b) get_values(codes + b * g / 2, g, e4m3_to_f32(scales[b]), out + b * g);
}

void fp4_e4m3_sim(float* x, int64_t n) {
  uint8_t codes[kFp4E4m3Group / 2], scale;
  for (int64_t b = 0; b < n; b += kFp4E4m3Group) {
    fp4_e4m3_pack(x + b, kFp4E4m3Group, codes, &scale);
    fp4_e4m3_unpack(codes, &scale, kFp4E4m3Group, x + b);
  }
}

void fp4_e8m0_pack(const float* x, int64_t n, uint8_t* codes, uint8_t* scales) {
  const int64_t g = kFp4E8m0Group;
  for (int64_t b = 0; b < n / g; ++b) {
    const float s = pow2_ceil(std::max(group_amax(x + b * g, g), kAmaxFloorE8m0) * kInvE2m1Max);
    scales[b] = uint8_t((f32_bits(s) >> 23) & 0xff);   // s is a normal power of two: its exponent field
    put_codes(x + b * g, g, s, codes + b * g / 2);
  }
}

void fp4_e8m0_unpack(const uint8_t* codes, const uint8_t* scales, int64_t n, float* out) {
  const int64_t g = kFp4E8m0Group;
  for (int64_t b = 0; b < n / g; ++b) get_values(codes + b * g / 2, g, e8m0_to_f32(scales[b]), out + b * g);
}

}  // namespace dsv4::kernels

#include "core/dtype.h"

#include <algorithm>

#include "core/status.h"

namespace dsv4 {

namespace {
// header: a safetensors header dtype, which parse_dtype accepts.
struct DTypeInfo { DType type; const char* name; uint32_t bits; bool header; };
constexpr DTypeInfo kDTypes[] = {
    {DType::bf16, "BF16", 16, true},          {DType::f16, "F16", 16, true},
    {DType::f32, "F32", 32, true},            {DType::f64, "F64", 64, true},
    {DType::fp8_e4m3, "F8_E4M3", 8, true},    {DType::fp8_e8m0, "F8_E8M0", 8, true},
    {DType::fp4_e2m1, "FP4_E2M1", 4, false},  {DType::i8, "I8", 8, true},
    {DType::u8, "U8", 8, true},               {DType::i32, "I32", 32, true},
    {DType::i64, "I64", 64, true},            {DType::bool_, "BOOL", 8, true},
};

const DTypeInfo& info(DType t) {
  for (const auto& d : kDTypes) if (d.type == t) return d;
  check_failed(__FILE__, __LINE__, "every DType has a row in kDTypes");
}
}  // namespace

bool parse_dtype(std::string_view s, DType* out) {
  for (const auto& d : kDTypes) {
    if (d.header && s == d.name) { *out = d.type; return true; }
  }
  return false;
}

const char* dtype_name(DType t) { return info(t).name; }

uint64_t dtype_bytes(DType t, uint64_t n) {
  const uint32_t bits = info(t).bits;
  if (bits >= 8) return n * (bits / 8);
  DSV4_CHECK(n % (8 / bits) == 0);
  return n / (8 / bits);
}

size_t dtype_align(DType t) { return std::max<size_t>(1, info(t).bits / 8); }

uint8_t f32_to_e4m3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  float a = std::fabs(f);
  if (std::isnan(f)) return 0x7f;
  if (a >= 448.0f) return sign | 0x7e;                 // saturate to max normal (1.75 * 2^8)
  // Smallest normal is 2^-6; below it the grid is man * 2^-9 (subnormals).
  if (a < 0x1p-6f) {
    const float q = std::nearbyint(a * 512.0f);        // RNE under the default rounding mode
    return sign | uint8_t(q);                          // q == 8 encodes 2^-6 (exp 1, man 0)
  }
  // Normal: keep 3 mantissa bits with round-to-nearest-even on the f32 bit pattern.
  uint32_t u = f32_bits(a);
  const uint32_t drop = 20;                             // 23 - 3 mantissa bits
  const uint32_t half = 1u << (drop - 1);
  const uint32_t lsb = (u >> drop) & 1u;
  u += half - 1 + lsb;
  u &= ~((1u << drop) - 1);
  const float r = bits_f32(u);
  if (r > 448.0f) return sign | 0x7e;
  const int32_t e = int32_t((u >> 23) & 0xff) - 127 + 7;  // E4M3 biased exponent
  const uint32_t man = (u >> drop) & 0x7;
  return sign | uint8_t((e << 3) | man);
}

uint8_t f32_to_e2m1(float f) {
  const uint8_t sign = std::signbit(f) ? 0x8 : 0x0;
  const float a = std::fabs(f);
  // Midpoints between grid values, with ties going to the even code (codes 0,2,4,6 are even).
  uint8_t code;
  if (a <= 0.25f) code = 0;          // tie 0.25 -> 0 (even)
  else if (a < 0.75f) code = 1;
  else if (a <= 1.25f) code = 2;     // tie 1.25 -> 2
  else if (a < 1.75f) code = 3;
  else if (a <= 2.5f) code = 4;      // tie 2.5 -> 4
  else if (a < 3.5f) code = 5;
  else if (a <= 5.0f) code = 6;      // tie 5 -> 6
  else code = 7;
  if (std::isnan(f)) code = 7;
  return sign | code;
}

}  // namespace dsv4

#include "core/dtype.h"

namespace dsv4 {

namespace {
struct DTypeInfo { DType type; const char* name; size_t size; };
constexpr DTypeInfo kDTypes[] = {
    {DType::bf16, "BF16", 2},          {DType::f16, "F16", 2},
    {DType::f32, "F32", 4},            {DType::f64, "F64", 8},
    {DType::fp8_e4m3, "F8_E4M3", 1},   {DType::fp8_e8m0, "F8_E8M0", 1},
    {DType::i8, "I8", 1},              {DType::u8, "U8", 1},
    {DType::i32, "I32", 4},            {DType::i64, "I64", 8},
    {DType::bool_, "BOOL", 1},
};
}  // namespace

bool parse_dtype(std::string_view s, DType* out) {
  for (const auto& d : kDTypes) {
    if (s == d.name) { *out = d.type; return true; }
  }
  return false;
}

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes) if (d.type == t) return d.name;
  return "?";
}

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes) if (d.type == t) return d.size;
  return 0;
}

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

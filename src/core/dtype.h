// Element formats of the official checkpoint and the reference numerics (spec §3.2, §4.2, §4.4).
// One decode/encode per format, used everywhere (kernels, tests, synth, future CUDA code).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dsv4 {

// Element types of tensors: the dtypes of safetensors headers, plus fp4_e2m1, two FP4 E2M1 values
// packed per byte (low nibble = even column, spec §3.2). safetensors headers have no spelling for
// fp4_e2m1: the official checkpoints label those tensors I8 with half the columns (spec §3.3), and
// io/inventory.h is where that labelling is undone.
enum class DType { bf16, f16, f32, f64, fp8_e4m3, fp8_e8m0, fp4_e2m1, i8, u8, i32, i64, bool_ };

// Parses a safetensors header dtype ("BF16", "F8_E4M3", "I8", ...). Returns false if unknown.
bool parse_dtype(std::string_view s, DType* out);
// The safetensors spelling; "FP4_E2M1" (for messages only) for fp4_e2m1, which has none.
const char* dtype_name(DType t);
// Bytes holding n elements. REQUIRES: a whole number of bytes (n even for fp4_e2m1).
uint64_t dtype_bytes(DType t, uint64_t n);
// The alignment an array of t needs to be read element by element: the element size, and one
// byte for fp4_e2m1, whose pairs are read as bytes.
size_t dtype_align(DType t);

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// ---- bfloat16 ----
inline float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }
// Round-to-nearest-even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
// "bf16(x)" of the spec: the f32 value of x rounded to bfloat16.
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// ---- FP8 E4M3FN (spec §3.2): bias 7, no infinities, S.1111.111 = NaN, max 448 ----
inline float e4m3_to_f32(uint8_t b) {
  const uint32_t sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 0x7;
  float v;
  if (exp == 0xf && man == 0x7) return std::nanf("");
  if (exp == 0) v = float(man) * 0x1p-9f;                      // subnormal: man * 2^-9
  else v = bits_f32(((exp + 120u) << 23) | (man << 20));       // 2^(exp-7) * 1.man
  return sign ? -v : v;
}
// Round-to-nearest-even to E4M3FN, saturating to ±448 (callers clamp first, spec §4.2).
uint8_t f32_to_e4m3(float f);
// Value of f rounded through E4M3 (the simulation used by act_quant).
inline float round_e4m3(float f) { return e4m3_to_f32(f32_to_e4m3(f)); }

// ---- FP8 E8M0 block scale (spec §3.2): value = 2^(e-127); e = 255 is NaN; e = 0 -> 2^-127 ----
inline float e8m0_to_f32(uint8_t e) {
  if (e == 255) return std::nanf("");
  if (e == 0) return bits_f32(0x00400000u);
  return bits_f32(uint32_t(e) << 23);
}

// ---- FP4 E2M1 (spec §3.2): nibble -> value; low nibble = even column ----
inline constexpr float kFp4Values[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                         -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
inline float e2m1_to_f32(uint8_t nibble) { return kFp4Values[nibble & 0xf]; }
// Round-to-nearest-even onto the E2M1 grid {0,.5,1,1.5,2,3,4,6}, saturating at ±6 (spec §4.4).
uint8_t f32_to_e2m1(float f);
inline float round_e2m1(float f) { return e2m1_to_f32(f32_to_e2m1(f)); }

// s = 2^ceil(log2 t) computed from the bits of t (spec §4.2 "bit method"); t > 0, finite.
inline float pow2_ceil(float t) {
  const uint32_t u = f32_bits(t);
  const int32_t e = int32_t((u >> 23) & 0xff);
  const uint32_t man = u & 0x7fffffu;
  // A subnormal t has no implicit bit; exponent field 0 means 2^-126 scale for the next power.
  if (e == 0) return man ? 0x1p-126f : 0.0f;
  return bits_f32(uint32_t(e + (man != 0 ? 1 : 0)) << 23);
}

}  // namespace dsv4

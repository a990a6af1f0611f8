#include "kernels/cpu/cuda_rsqrt.h"

#include <cmath>
#include <cstdint>
#include <cstring>

// The deviation table, decompressed at build time from data/cuda/rsqrtf_deviation.bin.xz and
// linked in read-only data: for x in [1, 4), entry i = bits(x) - bits(1.0f) holds 2 bits
// (entry i at bits 2·(i mod 4) of byte i/4): deviation in ulps from float(1/sqrt(double(x))) + 2.
asm(".pushsection .rodata\n"
    ".balign 64\n"
    ".globl dsv4_cuda_rsqrtf_deviation\n"
    "dsv4_cuda_rsqrtf_deviation:\n"
    ".incbin \"" DSV4_RSQRT_TABLE_PATH "\"\n"
    ".globl dsv4_cuda_rsqrtf_deviation_end\n"
    "dsv4_cuda_rsqrtf_deviation_end:\n"
    ".popsection\n");
extern "C" const uint8_t dsv4_cuda_rsqrtf_deviation[];
extern "C" const uint8_t dsv4_cuda_rsqrtf_deviation_end[];

namespace dsv4::kernels {

namespace {

constexpr uint32_t kOne = 0x3F800000u;       // bits of 1.0f
constexpr uint32_t kEntries = 1u << 24;      // [1, 4): two binades
constexpr int kMinDeviation = -2;

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

float from_bits(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

}  // namespace

float cuda_rsqrt(float x) {
  static_assert(sizeof(float) == 4);
  if (!(x >= 1.17549435e-38f) || !std::isfinite(x)) return float(1.0 / std::sqrt(double(x)));
  // x = x' · 4^k with x' in [1, 4); the hardware result scales exactly: rsqrt(x) = rsqrt(x') · 2^-k.
  const uint32_t b = bits_of(x);
  const int e = int((b >> 23) & 0xFF) - 127;
  const int k = e >= 0 ? e / 2 : -((1 - e) / 2);   // floor(e / 2)
  const uint32_t b1 = b - (uint32_t(2 * k) << 23);
  const uint32_t i = b1 - kOne;
  if (i >= kEntries || dsv4_cuda_rsqrtf_deviation_end - dsv4_cuda_rsqrtf_deviation != kEntries / 4)
    return float(1.0 / std::sqrt(double(x)));   // unreachable for normal x with an intact table
  const int deviation = int((dsv4_cuda_rsqrtf_deviation[i >> 2] >> ((i & 3) * 2)) & 3) + kMinDeviation;
  const float r1 = from_bits(bits_of(float(1.0 / std::sqrt(double(from_bits(b1))))) + uint32_t(deviation));
  return std::ldexp(r1, -k);
}

}  // namespace dsv4::kernels

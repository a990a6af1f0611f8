#include "kernels/cpu/cuda_exp.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace dsv4::kernels {

namespace {

// The f32 constants of __nv_expf (CUDA 13 libdevice; tools/cuda_math/probe_ex2.py).
const float kLog2e = bits_f32(0x3FB8AA3Bu);      // log2 e rounded to f32
const float kLog2eLow = bits_f32(0x32A57060u);   // log2 e − kLog2e
// Only picks k: at the edges of the reduction interval either k keeps r within (−2^-16, 1 + 2^-16).
const float kLog2eOver252 = float(1.4426950408889634 / 252.0);
constexpr float kShift = 12582913.0f;            // 1.5·2^23 + 1: floor(t·252) lands in the low bits
constexpr float kBias = 12583039.0f;             // 1.5·2^23 + 127: j − kBias = k

// fma rounded toward −∞ (t·252 + kShift is exact in double, so one rounding to f32 suffices).
float fma_round_down(float a, float b, float c) {
  const double exact = double(a) * double(b) + double(c);
  const float r = float(exact);
  return double(r) > exact ? std::nextafter(r, -INFINITY) : r;
}

}  // namespace

float cuda_expf(float a) {
  if (std::isnan(a)) return a;
  const float t = std::clamp(std::fma(a, kLog2eOver252, 0.5f), 0.0f, 1.0f);   // saturate
  const float j = fma_round_down(t, 252.0f, kShift);
  const float k = j - kBias;                     // exact: an integer in [−126, 126]
  float r = std::fma(a, kLog2e, -k);
  r = std::fma(a, kLog2eLow, r);
  float p = float(std::exp2(double(r)));         // stands in for ex2.approx.ftz (module comment)
  if (p < 0x1p-126f) p = 0.0f;                   // .ftz
  return p * bits_f32(f32_bits(j) << 23);        // · 2^k: k + 127 sits in the low bits of j
}

}  // namespace dsv4::kernels

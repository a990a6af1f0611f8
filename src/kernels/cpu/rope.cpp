#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace dsv4::kernels {

namespace {

// The reference builds its tables on the GPU: base^(2i/d) comes from CUDA's powf, which is not
// correctly rounded for a few of V4's inputs (10000^(22/64) and 10000^(50/64) one ulp low,
// 160000^(48/64) = 8000 several ulps high). A one-ulp frequency error turns into bf16 rounding
// flips as positions grow (teacher-forced layer-0 match ~85% instead of ~98%), so the tables of
// the V4 configurations are the values measured on an H100 (tools/cuda_math/probe_rope.py);
// other configurations fall back to correctly rounded powers.
struct MeasuredTable {
  int64_t rope_dim;
  double base;
  bool yarn;
  double factor;
  int64_t original_max_pos;
  double beta_fast, beta_slow;
  uint32_t inv_freq_bits[32];
};
constexpr MeasuredTable kMeasured[] = {
    {64, 10000.0, false, 0, 0, 0, 0,
     {0x3f800000, 0x3f3ff911, 0x3f0ff59a, 0x3ed7e89b, 0x3ea1e89b, 0x3e72d423, 0x3e361887, 0x3e088d77,
      0x3dcccccd, 0x3d99940d, 0x3d6655c2, 0x3d2cba16, 0x3d0186e3, 0x3cc2434f, 0x3c91ad39, 0x3c5a7bf2,
      0x3c23d70a, 0x3bf5b9b0, 0x3bb8449c, 0x3b8a2e77, 0x3b4f3e38, 0x3b1b690d, 0x3ae91528, 0x3aaec98e,
      0x3a83126f, 0x3a44948d, 0x3a136a16, 0x39dd1725, 0x39a5cb60, 0x3978a815, 0x393a7753, 0x390bd472}},
    {64, 160000.0, true, 16.0, 65536, 32.0, 1.0,
     {0x3f800000, 0x3f300a3a, 0x3ef21c1f, 0x3ea67d01, 0x3e64f92e, 0x3e1d7475, 0x3dd88cb4, 0x3d94e963,
      0x3d4ccccd, 0x3d0cd4fb, 0x3cc1b019, 0x3c8530ce, 0x3c372dbf, 0x3bfbed88, 0x3bad3d5e, 0x3b6e4237,
      0x3b147ae1, 0x3ab714e0, 0x3a5ebdb6, 0x3a0530ce, 0x399bb3af, 0x39305978, 0x38be904d, 0x383e9b5f,
      0x37a3d708, 0x36b443d0, 0x3677eba6, 0x362a7be8, 0x35ea77ff, 0x35a13bdc, 0x355dbf30, 0x35187c4d}},
};

const MeasuredTable* measured_table(int64_t rope_dim, double base, bool yarn, double factor, int64_t original_max_pos,
                                    double beta_fast, double beta_slow) {
  for (const MeasuredTable& t : kMeasured) {
    if (t.rope_dim != rope_dim || t.base != base || t.yarn != yarn) continue;
    if (yarn && (t.factor != factor || t.original_max_pos != original_max_pos || t.beta_fast != beta_fast ||
                 t.beta_slow != beta_slow))
      continue;
    return &t;
  }
  return nullptr;
}

}  // namespace

RopeFreqs make_rope_freqs(int64_t rope_dim, double base, bool yarn, double factor, int64_t original_max_pos,
                          double beta_fast, double beta_slow) {
  RopeFreqs f;
  f.rope_dim = rope_dim;
  const int64_t half = rope_dim / 2;
  f.inv_freq.resize(static_cast<size_t>(half));
  if (const MeasuredTable* t = measured_table(rope_dim, base, yarn, factor, original_max_pos, beta_fast, beta_slow)) {
    for (int64_t i = 0; i < half; ++i) std::memcpy(&f.inv_freq[size_t(i)], &t->inv_freq_bits[i], sizeof(float));
    return f;
  }
  for (int64_t i = 0; i < half; ++i)
    f.inv_freq[size_t(i)] = 1.0f / float(std::pow(base, double(float(2 * i) / float(rope_dim))));
  if (!yarn) return f;
  // Correction range: the dimension whose wavelength completes `beta` turns over the original
  // context, d·ln(L/(β·2π)) / (2·ln base); Flash gives low = 15, high = 25.
  const double pi = 3.14159265358979323846;
  auto corr_dim = [&](double beta) {
    return double(rope_dim) * std::log(double(original_max_pos) / (beta * 2 * pi)) / (2 * std::log(base));
  };
  double low = std::max(0.0, std::floor(corr_dim(beta_fast)));
  double high = std::min(double(rope_dim - 1), std::ceil(corr_dim(beta_slow)));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < half; ++i) {
    // f32 as in the reference: smooth = 1 - ramp, f = f/factor·(1 - smooth) + f·smooth.
    const float ramp = std::clamp(float(double(i) - low) / float(high - low), 0.0f, 1.0f);
    const float smooth = 1.0f - ramp;
    const float fi = f.inv_freq[size_t(i)];
    f.inv_freq[size_t(i)] = fi / float(factor) * (1.0f - smooth) + fi * smooth;
  }
  return f;
}

void rope_angles(const RopeFreqs& f, int64_t pos, float* cs) {
  const float t = float(pos);
  for (size_t i = 0; i < f.inv_freq.size(); ++i) {
    const float a = t * f.inv_freq[i];
    cs[2 * i] = std::cos(a);
    cs[2 * i + 1] = std::sin(a);
  }
}

void rope_apply(float* v, int64_t width, int64_t rope_dim, const float* cs, bool inverse) {
  float* r = v + (width - rope_dim);
  // The reference multiplies complex64 values on the GPU, where (a + ib)(c + is) compiles to
  // re = fma(a, c, -(b·s)), im = fma(a, s, b·c) (matched bit for bit on an H100); the inverse
  // multiplies by the conjugate (c, -s).
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    const float a = r[2 * i], b = r[2 * i + 1];
    const float c = cs[2 * i], s = sign * cs[2 * i + 1];
    r[2 * i] = round_bf16(std::fma(a, c, -(b * s)));
    r[2 * i + 1] = round_bf16(std::fma(a, s, b * c));
  }
}

}  // namespace dsv4::kernels

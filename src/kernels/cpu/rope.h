// Partial interleaved rotary embedding on the last `rope_dim` dims of a vector (spec §4.6).
#pragma once

#include <cstdint>
#include <vector>

namespace dsv4::kernels {

// Per-pair inverse frequencies f[i], i < rope_dim/2, in f32, for one layer.
struct RopeFreqs {
  std::vector<float> inv_freq;
  int64_t rope_dim = 0;
};

// base^(-2i/d) for every pair; with YaRN (compressed layers) the frequencies of pairs beyond the
// correction range are divided by `factor`, with a linear ramp in between (spec §4.6).
RopeFreqs make_rope_freqs(int64_t rope_dim, double base, bool yarn, double factor, int64_t original_max_pos,
                          double beta_fast, double beta_slow);

// cos/sin of angle = f32(pos) · f[i] for every pair: cs[2i] = cos, cs[2i+1] = sin.
void rope_angles(const RopeFreqs& f, int64_t pos, float* cs);

// Rotates pairs (v[off+2i], v[off+2i+1]) with off = width - rope_dim; results rounded to bf16.
// inverse = true applies the conjugate rotation (de-rotation of attention outputs, spec §5.7).
void rope_apply(float* v, int64_t width, int64_t rope_dim, const float* cs, bool inverse);

}  // namespace dsv4::kernels

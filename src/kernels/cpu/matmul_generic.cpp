// Portable scalar variant of matmul in the canonical order (matmul.h): the fallback for CPUs
// without AVX2/FMA and for shapes the SIMD paths do not take, and the oracle the SIMD variants
// are compared with bit for bit. Slow (std::fma may be a library call); never the default on x86.
#include <cmath>

#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels::detail {
namespace {

// Column read at canonical position p (matmul.h; FP4: per 32-column block, position i < 16 is
// column 8*(i%4) + 4 + i/4, position 16 + i column 8*(i%4) + i/4).
inline int64_t canonical_col(const WeightView& w, int64_t p) {
  if (w.dtype != DType::fp4_e2m1) return p;
  const int64_t b = p & ~int64_t(31), j = p & 31, i = j & 15;
  return b + 8 * (i % 4) + (j < 16 ? 4 : 0) + i / 4;
}

void generic_rows(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                  float* scratch) {
  const int64_t K = w.cols;
  float* row = scratch;
  for (int64_t r = r0; r < r1; ++r) {
    dequant_row(w, r, row);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * K;
      float lanes[16] = {0};
      for (int64_t p = 0; p < K; ++p) {
        const int64_t c = canonical_col(w, p);
        lanes[p & 15] = std::fma(row[c], xt[c], lanes[p & 15]);
      }
      for (int half = 8; half >= 1; half /= 2)
        for (int l = 0; l < half; ++l) lanes[l] += lanes[l + half];
      y[t * w.rows + r] = lanes[0];
    }
  }
}

void generic_rows_two_slices(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                             float* scratch) {
  matmul_two_slices_rows(w, x, n, y, r0, r1, scratch);
}

int64_t generic_scratch_floats(int64_t cols) { return cols; }

double generic_fma_probe(int64_t iters, float multiplier) {
  float a[8];
  for (int i = 0; i < 8; ++i) a[i] = 1.0f + 0.01f * float(i);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i) a[i] = std::fma(a[i], multiplier, 1e-7f);
  volatile float keep = a[0] + a[7];
  (void)keep;
  return double(iters) * 8 * 2;
}

float generic_read_probe(const float* p, int64_t n) {
  float a[16] = {0};
  for (int64_t i = 0; i < n; i += 16)
    for (int l = 0; l < 16; ++l) a[l] += p[i + l];
  float s = 0.0f;
  for (float v : a) s += v;
  return s;
}

bool no_bf16_dot() { return false; }

}  // namespace

const MatmulIsa& matmul_isa_generic() {
  static const MatmulIsa isa{generic_rows,      generic_rows_two_slices, generic_scratch_floats, generic_fma_probe,
                             generic_read_probe, no_bf16_dot};
  return isa;
}

}  // namespace dsv4::kernels::detail

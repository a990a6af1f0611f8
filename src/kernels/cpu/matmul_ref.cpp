#include <cmath>
#include <vector>

#include "core/status.h"
#include "kernels/cpu/matmul.h"

namespace dsv4::kernels {

void dequant_row(const WeightView& w, int64_t r, float* out) {
  const int64_t K = w.cols;
  switch (w.dtype) {
    case DType::f32: {
      const float* p = static_cast<const float*>(w.data) + r * K;
      for (int64_t k = 0; k < K; ++k) out[k] = p[k];
      break;
    }
    case DType::bf16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * K;
      for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(p[k]);
      break;
    }
    case DType::fp8_e4m3: {
      // spec §3.2: scale [ceil(rows/B), ceil(cols/B)], a multiplier (B = w.block: 128, or 32 in V4.1).
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + r * K;
      const int64_t B = w.block, scale_cols = (K + B - 1) / B;
      const uint8_t* s = w.scale + (r / B) * scale_cols;
      for (int64_t k = 0; k < K; ++k) out[k] = e4m3_to_f32(p[k]) * e8m0_to_f32(s[k / B]);
      break;
    }
    case DType::fp4_e2m1: {
      // spec §3.2: byte j holds columns 2j (low nibble) and 2j+1 (high); scale per 32 columns.
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + r * (K / 2);
      const uint8_t* s = w.scale + r * (K / 32);
      for (int64_t j = 0; j < K / 2; ++j) {
        const float sc = e8m0_to_f32(s[(2 * j) / 32]);
        out[2 * j] = e2m1_to_f32(p[j] & 0xf) * sc;
        out[2 * j + 1] = e2m1_to_f32(p[j] >> 4) * sc;
      }
      break;
    }
    default:
      DSV4_CHECK(false && "matmul: unsupported weight dtype");
  }
}

void matmul_ref(const WeightView& w, const float* x, int64_t n, float* y) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequant_row(w, r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * w.cols;
      float acc = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) acc += row[size_t(k)] * xt[k];
      y[t * w.rows + r] = acc;
    }
  }
}

void matmul_two_slices_rows(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                            float* row) {
  DSV4_CHECK(w.dtype == DType::bf16 || w.dtype == DType::f32);
  const int64_t K = w.cols;
  for (int64_t r = r0; r < r1; ++r) {
    dequant_row(w, r, row);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * K;
      float acc[2] = {0.0f, 0.0f};
      for (int64_t k = 0; k < K; ++k) acc[(k >> 3) & 1] = std::fma(row[k], xt[k], acc[(k >> 3) & 1]);
      y[t * w.rows + r] = acc[0] + acc[1];
    }
  }
}

}  // namespace dsv4::kernels

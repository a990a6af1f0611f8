// Multi-threaded matmul: rows of W are split across threads; each row is dequantised once into
// a thread-local buffer and reused for all n activation rows (the prefill tile reuse).
// The dot product uses 16 independent f32 lanes reduced in a fixed order, so results do not
// depend on n or the thread count (see matmul.h).
#include <omp.h>

#include <vector>

#include "kernels/cpu/matmul.h"

namespace dsv4::kernels {

namespace {

inline float dot16(const float* a, const float* b, int64_t K) {
  float lanes[16] = {0};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += a[k + l] * b[k + l];
  }
  for (; k < K; ++k) lanes[k & 15] += a[k] * b[k];
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  return lanes[0];
}

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kMinParallelWork = 1 << 17;

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n, float* y) {
  const int64_t R = w.rows, K = w.cols;
#pragma omp parallel if (R * K * n >= kMinParallelWork)
  {
    std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      dequant_row(w, r, row.data());
      for (int64_t t = 0; t < n; ++t) y[t * R + r] = dot16(row.data(), x + t * K, K);
    }
  }
}

}  // namespace dsv4::kernels

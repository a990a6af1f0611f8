// Reductions with a double accumulator, rounded once to f32.
//
// The reference runs its reductions on the GPU as pairwise trees (torch mean/sum, cuBLAS), whose
// error is a few ulps at most; a sequential f32 sum over 512-4096 terms is off by tens of ulps.
// Those errors decide bf16 rounding ties downstream (RMSNorm outputs, hyper-connection mixes) and
// FP8 activation rounding then amplifies every flip, so the accurate sum tracks the reference far
// better: on fixtures/tiny the teacher-forced bitwise match of layer 1 rises from 71% to 97%.
#pragma once

#include <cstdint>

namespace dsv4::kernels {

inline float sum_squares_accurate(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return float(s);
}

inline float dot_accurate(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

}  // namespace dsv4::kernels

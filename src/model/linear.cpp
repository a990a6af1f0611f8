#include "model/linear.h"

#include <algorithm>

#include "core/dtype.h"
#include "kernels/cpu/quant_sim.h"

namespace dsv4::model {

namespace {
constexpr int kActBlock = 128;   // act_quant block of every FP8/FP4 GEMM input (spec §4.2)
}

void quantize_rows(const float* x, int64_t n, int64_t cols, float* xq) {
  std::copy(x, x + n * cols, xq);
  kernels::act_quant_fp8(xq, n * cols, kActBlock);
}

void round_rows_bf16(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = round_bf16(y[i]);
}

void linear_quant(const kernels::WeightView& w, const float* x, int64_t n, float* y, Arena& a) {
  ArenaScope scope(a);
  float* xq = a.alloc<float>(n * w.cols);
  quantize_rows(x, n, w.cols, xq);
  kernels::matmul(w, xq, n, y);
  round_rows_bf16(y, n * w.rows);
}

void linear_bf16(const kernels::WeightView& w, const float* x, int64_t n, float* y) {
  kernels::matmul(w, x, n, y);
  round_rows_bf16(y, n * w.rows);
}

}  // namespace dsv4::model

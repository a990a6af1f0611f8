#include "model/linear.h"

#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/quant_sim.h"

namespace dsv4::model {

namespace {
constexpr int kActBlock = 128;   // act_quant block of every FP8/FP4 GEMM input (spec §4.2)
}

void linear_quant(const kernels::WeightView& w, const float* x, int64_t n, float* y) {
  // Scratch reused across calls (capacity only grows): no allocation per GEMM once warm.
  thread_local std::vector<float> xq;
  xq.assign(x, x + n * w.cols);
  kernels::act_quant_fp8(xq.data(), n * w.cols, kActBlock);
  kernels::matmul(w, xq.data(), n, y);
  for (int64_t i = 0; i < n * w.rows; ++i) y[i] = round_bf16(y[i]);
}

void linear_bf16(const kernels::WeightView& w, const float* x, int64_t n, float* y) {
  kernels::matmul(w, x, n, y);
  for (int64_t i = 0; i < n * w.rows; ++i) y[i] = round_bf16(y[i]);
}

}  // namespace dsv4::model

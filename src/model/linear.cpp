#include "model/linear.h"

#include <algorithm>

#include "core/status.h"
#include "kernels/cpu/quant_sim.h"

namespace dsv4::model {

namespace {

// The act_quant-ed rows job i reads: an earlier job's copy of the same x, or a new one from `a`.
const float* quantized_input(const LinearJob* jobs, const kernels::MatmulJob* done, int64_t i, Arena& a) {
  const LinearJob& job = jobs[i];
  for (int64_t k = 0; k < i; ++k) {
    const LinearJob& prev = jobs[k];
    if (prev.kind != LinearKind::quantized || prev.x.act_quantized || prev.x.x != job.x.x) continue;
    DSV4_CHECK(prev.n == job.n && prev.w.cols == job.w.cols && prev.w.act_block == job.w.act_block);
    return done[k].x;
  }
  float* xq = a.alloc<float>(job.n * job.w.cols);
  act_quant_rows(job.x.x, job.n, job.w.cols, job.w.act_block, xq);
  return xq;
}

}  // namespace

LinearInput act_quant_rows(const float* x, int64_t n, int64_t cols, int block, float* xq) {
  std::copy(x, x + n * cols, xq);
  kernels::act_quant_fp8(xq, n * cols, block);
  return LinearInput::quantized(xq);
}

void linear_many(const LinearJob* jobs, int64_t count, Arena& a) {
  ArenaScope scope(a);
  kernels::MatmulJob* mm = a.alloc<kernels::MatmulJob>(count);
  for (int64_t i = 0; i < count; ++i) {
    const LinearJob& job = jobs[i];
    const bool quantized = job.kind == LinearKind::quantized;
    DSV4_CHECK(quantized || !job.x.act_quantized);
    const float* x = quantized && !job.x.act_quantized ? quantized_input(jobs, mm, i, a) : job.x.x;
    mm[i] = {job.w, x, job.n, job.y, job.order, /*bf16_out=*/job.kind != LinearKind::f32};
  }
  kernels::matmul_many(mm, count);
}

}  // namespace dsv4::model

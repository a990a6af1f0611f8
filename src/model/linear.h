// The three kinds of linear layer of the reference (spec §6.1), over any stored weight dtype.
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "model/scratch.h"

namespace dsv4::model {

// FP8/FP4 GEMM (spec §4.3): activations FP8-quantised in 128-blocks first, output rounded to bf16.
// Used for wq_a, wq_b, wkv, wo_b, indexer wq_b, shared and routed experts, MTP e_proj/h_proj.
// The quantised copy of x comes from `a` (given back on return).
void linear_quant(const kernels::WeightView& w, const float* x, int64_t n, float* y, Arena& a);

// The activation side of linear_quant alone: xq[n, cols] = act_quant(x) in 128-blocks (spec §4.2),
// for callers that feed one quantised input to several matrices (kernels::matmul_many) and then
// round with round_rows_bf16.
void quantize_rows(const float* x, int64_t n, int64_t cols, float* xq);

// y[i] = bf16(y[i]) for i < n.
void round_rows_bf16(float* y, int64_t n);

// bf16 GEMM: no activation quantisation, output rounded to bf16 (wo_a, indexer weights_proj).
void linear_bf16(const kernels::WeightView& w, const float* x, int64_t n, float* y);

// f32 GEMM: no quantisation, f32 output (compressor wkv/wgate, router gate, LM head).
inline void linear_f32(const kernels::WeightView& w, const float* x, int64_t n, float* y) {
  kernels::matmul(w, x, n, y);
}

}  // namespace dsv4::model

// The three kinds of linear layer of the reference (spec §6.1), over any stored weight dtype.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace dsv4::model {

// FP8/FP4 GEMM (spec §4.3): activations FP8-quantised in 128-blocks first, output rounded to bf16.
// Used for wq_a, wq_b, wkv, wo_b, indexer wq_b, shared and routed experts, MTP e_proj/h_proj.
void linear_quant(const kernels::WeightView& w, const float* x, int64_t n, float* y);

// bf16 GEMM: no activation quantisation, output rounded to bf16 (wo_a, indexer weights_proj).
void linear_bf16(const kernels::WeightView& w, const float* x, int64_t n, float* y);

// f32 GEMM: no quantisation, f32 output (compressor wkv/wgate, router gate, LM head).
inline void linear_f32(const kernels::WeightView& w, const float* x, int64_t n, float* y) {
  kernels::matmul(w, x, n, y);
}

}  // namespace dsv4::model

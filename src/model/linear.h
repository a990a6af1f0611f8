// The three kinds of linear layer of the reference (spec §6.1), over any stored weight dtype. The
// rounding rules of each kind live here and nowhere else: model code names the kind of a product,
// never quantises its input or rounds its output by hand.
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "model/scratch.h"

namespace dsv4::model {

enum class LinearKind {
  // FP8 x FP8 or FP8 x FP4 GEMM (spec §4.3): x act_quant-ed first (§4.2) in blocks of the
  // weight's act_block (128; 32 in V4.1, v4.1 §4.2), output rounded to bf16. wq_a, wq_b, wkv, wo_b, indexer wq_b, shared and routed experts, MTP
  // e_proj/h_proj.
  quantized,
  // bf16 GEMM: x as given, output rounded to bf16. wo_a per group (§5.8; the reference dequantises
  // it to bf16 at load, §3.6), indexer weights_proj (§5.6).
  bf16,
  // f32 GEMM: x as given, f32 output. Compressor wkv/wgate (§5.5), router gate (§5.10), LM head.
  f32,
};

// The activation operand of a linear: rows as they are, or (LinearKind::quantized only) rows
// already act_quant-ed by act_quant_rows() or copied from such rows. The latter lets a caller that
// regroups one quantised input quantise it once: the MoE gathers each expert's rows from it.
struct LinearInput {
  const float* x = nullptr;
  bool act_quantized = false;

  LinearInput() = default;
  LinearInput(const float* rows) : x(rows) {}   // NOLINT: implicit by design (rows as they are)
  static LinearInput quantized(const float* xq) {
    LinearInput in(xq);
    in.act_quantized = true;
    return in;
  }
};

// xq[n, cols] = act_quant(x) in blocks of `block` (spec §4.2; the act_block of the weights that
// will read it): the input side of LinearKind::quantized, for a caller that keeps the quantised
// rows (see LinearInput).
LinearInput act_quant_rows(const float* x, int64_t n, int64_t cols, int block, float* xq);

// y[n, w.rows] = kind(x[n, w.cols] · wᵀ).
struct LinearJob {
  LinearKind kind = LinearKind::f32;
  kernels::WeightView w;
  LinearInput x;
  int64_t n = 0;
  float* y = nullptr;
  kernels::SumOrder order = kernels::SumOrder::canonical;   // see kernels/cpu/matmul.h
};

// Runs the jobs in one parallel region (kernels::matmul_many): each input of a quantized job is
// act_quant-ed once however many jobs read it (same x pointer), and each y is bit-identical to its
// job run alone. Temporaries come from `a`. REQUIRES: no y overlaps another job's x or y; jobs
// sharing an x agree on n, w.cols and (quantized) w.act_block.
void linear_many(const LinearJob* jobs, int64_t count, Arena& a);

inline void linear(const LinearJob& job, Arena& a) { linear_many(&job, 1, a); }

}  // namespace dsv4::model

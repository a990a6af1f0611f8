#include "model/attention_output.h"

#include <algorithm>

#include "core/dtype.h"
#include "core/status.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

// Rows [r0, r0 + n) of a weight matrix stored row-major in whole scale blocks (FP8: w.block rows)
// or without scales (BF16/F32): the per-group slice of wo_a.
kernels::WeightView row_slice(const kernels::WeightView& w, int64_t r0, int64_t n) {
  DSV4_CHECK(w.dtype == DType::fp8_e4m3 || w.dtype == DType::bf16 || w.dtype == DType::f32);
  kernels::WeightView v = w;
  v.rows = n;
  v.data = static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, uint64_t(r0 * w.cols));
  if (w.scale) v.scale = w.scale + (r0 / w.block) * ((w.cols + w.block - 1) / w.block);
  return v;
}

}  // namespace

void grouped_output_projection(const Model& m, const AttentionWeights& w, const float* o, int64_t rows, float* out,
                               Arena& a) {
  const io::ModelConfig& c = m.cfg;
  const int64_t H = c.num_attention_heads, Dh = c.head_dim;
  const int64_t G = c.o_groups, Ro = c.o_lora_rank, gw = H * Dh / G;
  ArenaScope scope(a);
  // z_g = bf16(o_g · wo_a[g]ᵀ), all groups in one parallel region. With several rows each group
  // reads a group-major copy of o (its rows contiguous) and writes a group-major z, copied back.
  float* z = a.alloc<float>(rows * G * Ro);
  const float* og = o;
  float* zg = z;
  if (rows > 1) {
    float* copy = a.alloc<float>(G * rows * gw);
    zg = a.alloc<float>(G * rows * Ro);
    for (int64_t g = 0; g < G; ++g)
      for (int64_t t = 0; t < rows; ++t)
        std::copy(o + t * H * Dh + g * gw, o + t * H * Dh + (g + 1) * gw, copy + (g * rows + t) * gw);
    og = copy;
  }
  LinearJob* jobs = a.alloc<LinearJob>(G);
  for (int64_t g = 0; g < G; ++g) {
    const float* xin = rows > 1 ? og + g * rows * gw : o + g * gw;
    float* yout = rows > 1 ? zg + g * rows * Ro : z + g * Ro;
    jobs[g] = {LinearKind::bf16, row_slice(w.wo_a, g * Ro, Ro), xin, rows, yout};
  }
  linear_many(jobs, G, a);
  if (rows > 1)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t t = 0; t < rows; ++t)
        std::copy(zg + (g * rows + t) * Ro, zg + (g * rows + t + 1) * Ro, z + t * G * Ro + g * Ro);
  // out = GEMM_fp8(concat_g z_g, wo_b).
  linear({LinearKind::quantized, w.wo_b, z, rows, out}, a);
}

}  // namespace dsv4::model

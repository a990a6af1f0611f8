// Internal to kernels/cpu: the per-instruction-set table of the attention-side kernels
// (sparse_attn.h), filled by the same variants as matmul (matmul_isa.h) and chosen with it.
#pragma once

#include <cstdint>

namespace dsv4::kernels::detail {

struct AttnIsa {
  void (*attention_rows)(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, int64_t h0, int64_t h1, float* out);
  void (*indexer_scores)(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys,
                         int64_t j0, int64_t j1, float* scores);
};

const AttnIsa& attn_isa_generic();
const AttnIsa& attn_isa_avx2();
const AttnIsa& attn_isa_avx512();

// Bounds the SIMD variants rely on (stack buffers): heads <= kMaxIndexHeads, heads * dim <=
// kMaxIndexQuery; larger shapes take the generic path. V4: 64 x 128. Attention: dim <=
// kMaxAttnDim (V4: 512).
constexpr int64_t kMaxIndexHeads = 256;
constexpr int64_t kMaxIndexQuery = 64 * 256;
constexpr int64_t kMaxAttnDim = 1024;

// Σ p[i] for i < n as the reference sums an attention block's probabilities (torch_row_sum of
// reduce.h), compiled once for the baseline ISA: the SIMD files call it rather than instantiate
// the inline template with their own instruction set.
float block_prob_sum(const float* p, int64_t n);

}  // namespace dsv4::kernels::detail

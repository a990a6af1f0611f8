// Attention with a per-head sink over an explicit entry list (spec §5.7), and the lightning
// indexer's scores (spec §5.6): the two per-query loops whose cost grows with the context.
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// For each head h < H: z_a = (q_h · kv_a) · scale over the n entries (key = value, rows of `kv`),
// walked in blocks of 64 with an online softmax whose unnormalised probabilities are rounded to
// bf16 against the running maximum (as the reference kernel does); the sink enters only the
// denominator: o_h = bf16(Σ_a bf16(e^(z_a−M))·kv_a / (Σ_a e^(z_a−M) + e^(sink_h−M))).
// The first n_window entries are the raw window, the rest compressed entries; the compressed
// entries start a new block. q: [H, dim], kv: [n, dim], out: [H, dim].
// Orders (those of the reference on the GPU): q·k summed exactly (a sequential double sum, as
// dot_accurate of reduce.h); a block's probabilities summed as torch_row_sum over the 64-entry
// block (zeros for padding); P·V summed left to right over the block's entries per element; both
// folded as running·rescale + block. Scalar reference of attention_rows_bf16.
// REQUIRES 1 <= n_window <= n.
void attention_with_sink(const float* q, int64_t H, const float* kv, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, float* out);

// The same function, bit for bit, over entries given as bf16 rows (the state's storage: every
// stored entry is bf16-representable, so nothing is lost) and for heads [h0, h1) only, so that
// one query can be split over threads by heads. q, sinks and out are indexed by absolute head.
// SIMD (the matmul instruction set, kernels/cpu/matmul.h).
// REQUIRES 1 <= n_window <= n; every rows[a] holds dim values; dim % 16 == 0.
void attention_rows_bf16(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, int64_t h0, int64_t h1, float* out);

// Lightning-indexer scores of entries [j0, j1) for one query (spec §5.6):
//   s_h = bf16(q_h · k_j)          (sequential f32 sum over the dim, multiply then add)
//   I_j = bf16(Σ_h bf16(max(s_h, 0) · w_h))   (heads summed in order, starting from +0)
// q: [heads, dim] f32, w: [heads], keys: [*, dim] bf16; scores[j] for j in [j0, j1).
// indexer_scores_ref is the scalar definition; indexer_scores gives the same bits with SIMD over
// the heads and several entries at a time.
void indexer_scores_ref(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys,
                        int64_t j0, int64_t j1, float* scores);
void indexer_scores(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys, int64_t j0,
                    int64_t j1, float* scores);

}  // namespace dsv4::kernels

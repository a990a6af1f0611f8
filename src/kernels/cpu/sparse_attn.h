// Attention with a per-head sink over an explicit entry list (spec §5.7).
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// For each head h < H: z_a = (q_h · kv_a) · scale over the n entries (key = value, rows of `kv`),
// walked in blocks of 64 with an online softmax whose unnormalised probabilities are rounded to
// bf16 against the running maximum (as the reference kernel does); the sink enters only the
// denominator: o_h = bf16(Σ_a bf16(e^(z_a−M))·kv_a / (Σ_a e^(z_a−M) + e^(sink_h−M))).
// The first n_window entries are the raw window, the rest compressed entries; the compressed
// entries start a new block. q: [H, dim], kv: [n, dim], out: [H, dim].
// REQUIRES 1 <= n_window <= n.
void attention_with_sink(const float* q, int64_t H, const float* kv, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, float* out);

}  // namespace dsv4::kernels

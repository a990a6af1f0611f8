// The attention sub-layer of a block for every kind (SWA-only, CSA, HCA), spec §5.3–§5.9, with
// the chunk semantics of §5.13: any chunk length at any position gives the same result.
// attention.cpp runs the step: projections (§5.3, §5.5, §5.6), compressors per segment (§5.5),
// the ring (§5.13); attention_core.h the entries and the sparse attention (§5.4, §5.7);
// attention_output.h the grouped output projection (§5.8).
#pragma once

#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// x: [rows, D] attn-normed input (bf16-valued); out: [rows, D]. Appends to and updates the
// segments' LayerState of block b (b.layer indexes SequenceState::layers).
// Temporaries come from s.
void attention_forward(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out,
                       Scratch& s);

// The query side and raw entries of an SWA block's rows as attention_forward computes them (spec
// §5.3), without touching any state: q [rows, H·Dh] after the per-head norm and RoPE, kv [rows, Dh]
// after kv_norm, RoPE and the FP8 simulation of the nope dims, each row at batch.positions. Both
// come from `a`. The DSpark stages attend with them (addendum §A4.7).
struct QueryEntries {
  float* q = nullptr;
  float* kv = nullptr;
};
QueryEntries project_swa_rows(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, Arena& a);

// Raw entries only (spec §5.3): kv [rows, Dh] = RMSNorm(wkv(x), kv_norm), RoPE at positions[t],
// FP8 simulation of the nope dims, for x [rows, D]. The DSpark context ring holds such entries of
// main_x (addendum §A4.4). Temporaries come from `a`.
void project_raw_entries(const Model& m, const BlockWeights& b, const float* x, const int64_t* positions, int64_t rows,
                         float* kv, Arena& a);

}  // namespace dsv4::model

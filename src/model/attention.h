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

}  // namespace dsv4::model

// The V4 forward pass over a batch of sequence chunks (spec §5.1, Appendix B).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Residual streams: [rows, n_hc, D] f32 holding bf16 values (spec §5.1: stored in bf16).
using Streams = std::vector<float>;

// X = n_hc copies of embed[token] per row. X holds rows·n_hc·D floats.
void embed_rows(const Model& m, const int32_t* tokens, int64_t rows, float* X);

// One block (attention + MoE with their hyper-connections) over the batch, in place.
void run_block(const Model& m, const BlockWeights& b, const Batch& batch, float* X, Scratch& s);

// Final collapse and LM head for selected rows: hc_head → RMSNorm → f32 logits [rows.size(), V].
void head_logits(const Model& m, const HeadWeights& head, const float* X, std::span<const int64_t> rows, float* logits,
                 Scratch& s);

// Main stack over the batch: embeds, runs every block, advances each segment's sequence position
// (REQUIRES segment start_pos == seq->pos). X receives the final streams (before hc_head),
// rows·n_hc·D floats. Temporaries come from s (see Scratch::begin_step).
void forward_streams(const Model& m, const Batch& batch, float* X, Scratch& s);

// MTP block (spec §5.11) for n positions of one sequence: hidden rows h [n, n_hc, D] are the main
// stack's final streams at positions seq.mtp_pos.., next_tokens the ids t_{i+1}. Writes the logits
// of the last `logit_rows` rows ([logit_rows, V], predicting t_{i+2}); advances seq.mtp_pos.
void mtp_forward(const Model& m, SequenceState& seq, const float* h, const int32_t* next_tokens, int64_t n,
                 int64_t logit_rows, float* logits, Scratch& s);

}  // namespace dsv4::model

// The V4 forward pass over a batch of sequence chunks (spec §5.1, Appendix B).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/function_ref.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Residual streams: [rows, n_hc, D] f32 holding bf16 values (spec §5.1: stored in bf16).
using Streams = std::vector<float>;

// Floats per row of the streams forward_streams writes: the n_hc·D streams; V4.1 adds the n_hc
// pre coefficients that collapse them (v4.1 §5.2.2: no hc_head).
int64_t stream_width(const io::ModelConfig& c);

// X = n_hc copies of embed[token] per row. X holds rows·n_hc·D floats.
void embed_rows(const Model& m, const int32_t* tokens, int64_t rows, float* X);

// The attention sub-layer of a block: out [rows, D] from x [rows, D], the attn-normed rows.
using AttentionSublayer = FunctionRef<void(const float* x, float* out)>;

// One block (attention + MoE with their hyper-connections) over the batch, in place, with the
// target's attention (attention_forward: the segments' state is read and extended).
void run_block(const Model& m, const BlockWeights& b, const Batch& batch, float* X, Scratch& s);
// The same block with another attention sub-layer in place of the target's: the DSpark draft's
// stages, which attend over a context ring of their own (addendum §A4.6-§A4.7, model/dspark.h).
void run_block(const Model& m, const BlockWeights& b, const Batch& batch, float* X, Scratch& s,
               AttentionSublayer attention);

// Final collapse and LM head for selected rows of X (stream_width floats each): hc_head (V4.1:
// hc_pre with the row's lagged pre, v4.1 §5.13) → RMSNorm → f32 logits [rows.size(), V].
void head_logits(const Model& m, const HeadWeights& head, const float* X, std::span<const int64_t> rows, float* logits,
                 Scratch& s);
// head_logits in its two halves, for the DSpark head, whose confidence reads y before the norm
// (addendum §A4.9): y [rows.size(), D] = hc_head(X) of the selected rows (spec §5.2.4); then
// logits [R, V] = f32(RMSNorm(y, head.norm)) · f32(head.weight)ᵀ for y [R, D] (not modified).
void head_collapse(const Model& m, const HeadWeights& head, const float* X, std::span<const int64_t> rows, float* y);
void head_norm_logits(const Model& m, const HeadWeights& head, const float* y, int64_t R, float* logits, Scratch& s);

// Main stack over the batch: embeds, runs every block, advances each segment's sequence position
// (REQUIRES segment start_pos == seq->pos). X receives the final streams (before hc_head),
// rows·stream_width floats (V4.1: model/forward_v41.h). With taps set (a DSpark model only),
// taps [rows, |T|·D] receives the DSpark taps of every row: the stream mean after each layer of
// dspark.target_layer_ids (addendum §A4.2; V4.1: entering each, v4.1 §7.2; dspark_tap in
// model/dspark.h). Temporaries come from s (see Scratch::begin_step).
void forward_streams(const Model& m, const Batch& batch, float* X, Scratch& s, float* taps = nullptr);

// MTP block (spec §5.11) for n positions of one sequence: hidden rows h [n, n_hc, D] are the main
// stack's final streams at positions seq.mtp_pos.., next_tokens the ids t_{i+1}. Writes the logits
// of the last `logit_rows` rows ([logit_rows, V], predicting t_{i+2}); advances seq.mtp_pos.
void mtp_forward(const Model& m, SequenceState& seq, const float* h, const int32_t* next_tokens, int64_t n,
                 int64_t logit_rows, float* logits, Scratch& s);

}  // namespace dsv4::model

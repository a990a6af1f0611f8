// The DeepSeek-V4.1 text forward over a batch of sequence chunks (v4.1 §5.1-§5.2, §6, §9,
// Appendix B): Engram before its layers, blocks with lagged hyper-connections, no hc_head.
// model/forward.h's forward_streams dispatches here for a V4.1 model.
#pragma once

#include "model/batch.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Runs the stack over the batch and advances each segment's sequence (position, Engram history).
// out receives per row the final streams [n_hc, D] followed by the pre coefficients [n_hc] of
// the last FFN sub-layer, which collapse them (v4.1 §5.2.2, §5.13): stream_width(cfg) floats.
// With taps set, taps [rows, |T|·D] receives the DSpark taps of every row: the stream mean
// entering each layer of dspark.target_layer_ids, after its Engram (v4.1 §7.2: layer inputs).
void forward_streams_v41(const Model& m, const Batch& batch, float* out, Scratch& s, float* taps);

// pre [rows, n_hc] = the one-hot of stream 0 (v4.1 §5.1 "make_identity_pre_mix"): what the first
// block's attention collapses with, in the stack and in the DSpark draft block (v4.1 §7.4).
void identity_pre(const io::ModelConfig& c, int64_t rows, float* pre);

// One block (v4.1 §5.2.2): X [rows, n_hc, D] in place; pre [rows, n_hc] in: the previous
// sub-layer's pre (layer 0: one-hot), out: this block's FFN pre. `attention` is the attention
// sub-layer: the target's (attention_v41) or a DSpark stage's (v4.1 §7.4, model/dspark.h).
void run_block_v41(const Model& m, const BlockWeights& b, const Batch& batch, float* X, float* pre, Scratch& s,
                   AttentionSublayer attention);

}  // namespace dsv4::model

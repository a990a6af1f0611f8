// The DSpark drafter's forward pass (addendum §A4): the target taps, the per-stage context rings
// they fill, the draft block of γ rows through the NS stages, and the heads a speculative round
// reads (base logits, Markov bias, confidence). The round itself (sampling, verification, commit;
// addendum §A5) is the runtime's: nothing here samples or touches the target's state.
//
// V4.1 (v4.1 §7) runs the same calls; only these differ: the taps are the inputs of the target
// layers (forward_streams_v41), the stages are V4.1 blocks (lagged pre threaded from stage to
// stage, their own MoE) whose query side and entries are V4.1's (no q norm, act_quant block 32
// over all 512 dims), and y collapses with the last stage's FFN pre instead of an hc_head.
//
// One round, in these calls (addendum Appendix C; P = st.pos - 1 is the last committed position,
// A the anchor at st.pos):
//   dspark_draft_block(m, st, A, base, y, s)                  base [γ, V], y [γ, D]
//   for i < γ: z_i = base_i; dspark_markov_add(m, prev_i, z_i, s); d_{i+1} = sample(z_i);
//              c_i = dspark_confidence(m, y_i, prev_i, s)       prev_0 = A, prev_{i+1} = d_{i+1}
//   verify [A, d_1..d_k] with forward_streams(..., taps); then for the a+1 committed positions
//   dspark_absorb(m, st, taps of those rows, a + 1, s).
// After the prompt's forward: dspark_absorb of every prompt row, then the first draft.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "io/config.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Per-sequence drafter state (addendum §A4.4): one context ring per stage, holding the stage's
// key/value rows mk_s(p) of the last committed positions. Only rows derived from the target's taps
// enter it, never the draft block's, so a rejected draft needs no rollback. A new sequence starts
// from a fresh state (make_dspark_state).
struct DsparkState {
  int64_t pos = 0;   // positions absorbed (0 .. pos-1); the next draft block starts at position pos
  int64_t stages = 0, window = 0, dim = 0;   // NS, W, Dh
  // bf16 [NS, W, Dh]: slot p mod W of stage s holds mk_s(p) for the last min(pos, W) positions p.
  std::vector<uint16_t> ring;

  const uint16_t* slot(int64_t stage, int64_t slot) const {
    return ring.data() + (stage * window + slot) * dim;
  }
  size_t memory_bytes() const { return ring.capacity() * sizeof(uint16_t); }
};

// A fresh state (pos 0, rings zero) for a model's drafter. REQUIRES: m.w.has_dspark.
DsparkState make_dspark_state(const Model& m);

// Width of a row of taps: |T| · D (T = dspark.target_layer_ids; addendum §A4.2).
int64_t dspark_tap_width(const io::ModelConfig& c);

// Tap k (of T) of every row, from the streams X [rows, n_hc, D] of target layer T[k] (V4: leaving
// it, addendum §A4.2; V4.1: entering it, v4.1 §7.2): taps[r, k·D + d] = bf16(Σ_j X[r, j, d] · (1/n_hc)), the
// streams summed in f32 in order from stream 0 (a PyTorch bf16 mean; addendum §A4.2). taps holds
// rows x dspark_tap_width(c) floats. forward_streams(..., taps) calls it after each layer of T.
void dspark_tap(const io::ModelConfig& c, const float* X, int64_t rows, int64_t k, float* taps);

// Absorbs n committed positions st.pos .. st.pos+n-1 from their taps [n, dspark_tap_width] (rows
// in position order): main_x = RMSNorm(GEMM_fp8(taps, main_proj), main_norm) (addendum §A4.3),
// then per stage s mk_s = RMSNorm(GEMM_fp8(main_x, wkv_s), kv_norm_s), RoPE at the position (base
// rope_theta, no YaRN), FP8 simulation of the nope dims in blocks of 64 (V4.1: all 512 dims in
// blocks of 32, v4.1 §7.4), into ring slot p mod W (§A4.4); st.pos += n. Only the last min(n, W) positions are computed: older ones would be
// overwritten before any draft reads them. Absorbing n rows at once or one at a time gives the
// same bits. Temporaries come from s (see Scratch::begin_step).
// Fails (invalid_argument / unsupported, st unchanged) if the model has no DSpark drafter, the
// state is not this model's, n < 0, or taps is null with n > 0.
Status dspark_absorb(const Model& m, DsparkState& st, const float* taps, int64_t n, Scratch& s);

// DSpark attention of stage `stage` (addendum §A4.7), the attention sub-layer of the draft block's
// stages: out [rows, D] for x [rows, D] (attn-normed) at batch.positions. q and the rows' own
// entries are made as the target's SWA attention makes them (spec §5.3; V4.1: its window
// attention, v4.1 §5.4-§5.5; RoPE base rope_theta);
// every row attends the same bank: the stage's ring slots 0 .. min(W, st.pos)-1 in slot order, then
// the rows' own entries (no causal mask); sink attention, de-rotation at the row's position and
// the grouped output projection as spec §5.7-§5.8. Reads no segment state (batch's segments may
// have no sequence). Temporaries come from s.
// REQUIRES: st made for m (make_dspark_state); st.pos >= 1; 0 <= stage < st.stages.
void dspark_attention(const Model& m, const DsparkState& st, int64_t stage, const Batch& batch, const float* x,
                      float* out, Scratch& s);

// The draft block of one round (addendum §A4.5-§A4.9): ids [anchor, NOISE x (γ-1)] at positions
// st.pos .. st.pos+γ-1 (γ = dspark.block_size), 4 copies of the target's embedding per row,
// through the NS stages as main blocks (run_block; V4.1: run_block_v41 from the one-hot pre)
// whose attention is dspark_attention. Writes y [γ, D] = hc_head of the last stage (V4.1:
// hc_pre with its FFN pre, v4.1 §7.4; bf16 values, before mtp.{NS-1}.norm: the confidence input)
// and base_logits [γ, V] = f32(RMSNorm(y, norm)) · f32(head.weight)ᵀ (all rows, the target's
// head). Row i predicts the token at position st.pos+i+1, before its Markov term. The state is
// only read. Temporaries (and s.own_batch) come from s; a warm call allocates nothing.
// Fails (invalid_argument / unsupported) if the model has no DSpark drafter, the state is not
// this model's, nothing is absorbed yet (st.pos == 0), or anchor is not a token id.
Status dspark_draft_block(const Model& m, const DsparkState& st, int32_t anchor, float* base_logits, float* y,
                          Scratch& s);

// The Markov term of one draft row (addendum §A4.10): logits [V] += f32(e) · f32(markov_w2)ᵀ with
// e = markov_w1[prev_token], one f32 add per logit, the product summed in f32. prev_token is the
// token before the row's prediction: the anchor for row 0, else the token drafted at row i-1.
// Temporaries come from s. REQUIRES: m.w.has_dspark; 0 <= prev_token < V.
void dspark_markov_add(const Model& m, int32_t prev_token, float* logits, Scratch& s);

// The confidence head of one draft row (addendum §A4.11): c = f32([y; e]) · f32(proj)ᵀ, an f32 dot
// of width D + r, no bias, with y [D] the row of dspark_draft_block's y (before the norm) and
// e = markov_w1[prev_token] (prev_token as for dspark_markov_add). Returns the raw logit:
// sigmoid(c) estimates the probability that the row's draft is accepted given the earlier ones.
// Temporaries come from s. REQUIRES: m.w.has_dspark; 0 <= prev_token < V.
float dspark_confidence(const Model& m, const float* y, int32_t prev_token, Scratch& s);

}  // namespace dsv4::model

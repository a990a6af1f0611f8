#include "model/dspark.h"

#include <algorithm>
#include <span>
#include <string>

#include "core/dtype.h"
#include "core/parallel.h"
#include "kernels/cpu/norms.h"
#include "model/attention.h"
#include "model/attention_core.h"
#include "model/attention_output.h"
#include "model/attention_v41.h"
#include "model/forward.h"
#include "model/forward_v41.h"
#include "model/hc.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

// A state built by make_dspark_state for this model's drafter.
Status check_state(const Model& m, const DsparkState& st, const char* what) {
  if (!m.w.has_dspark) return Status::unsupported(std::string(what) + ": the model has no DSpark drafter");
  const io::ModelConfig& c = m.cfg;
  if (st.stages != int64_t(m.w.dspark.stages.size()) || st.window != c.sliding_window || st.dim != c.head_dim ||
      int64_t(st.ring.size()) != st.stages * st.window * st.dim)
    return Status::invalid_argument(std::string(what) + ": the DSpark state was not made for this model");
  return Status::ok_status();
}

// The Markov embedding e = markov_w1[token] (bf16 [r], widened) (addendum §A4.10).
void markov_embedding(const Model& m, int32_t token, float* e) {
  const int64_t r = m.cfg.dspark.markov_rank;
  DSV4_CHECK(m.w.has_dspark && token >= 0 && token < m.cfg.vocab_size);
  const uint16_t* row = static_cast<const uint16_t*>(m.w.dspark.markov_w1.data) + int64_t(token) * r;
  for (int64_t k = 0; k < r; ++k) e[k] = bf16_to_f32(row[k]);
}

// What differs between the architectures' stage attention (v4.1 §7.4 against addendum §A4.4,
// §A4.7): V4 makes the query side and entries as its SWA attention does (spec §5.3: per-head q
// norm, FP8 simulation of the nope dims in blocks of 64); V4.1 as its window attention does
// (v4.1 §5.4-§5.5: no q norm, act_quant block 32 over all 512 dims).
bool is_v41(const Model& m) { return m.cfg.architecture == io::Architecture::v41; }

QueryEntries stage_rows(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, Arena& a) {
  return is_v41(m) ? project_window_rows_v41(m, b, batch, x, a) : project_swa_rows(m, b, batch, x, a);
}

void stage_entries(const Model& m, const BlockWeights& b, const float* x, const int64_t* positions, int64_t rows,
                   float* kv, Arena& a) {
  if (is_v41(m)) project_window_entries_v41(m, b, x, positions, rows, kv, a);
  else project_raw_entries(m, b, x, positions, rows, kv, a);
}

}  // namespace

DsparkState make_dspark_state(const Model& m) {
  DSV4_CHECK(m.w.has_dspark);
  DsparkState st;
  st.stages = int64_t(m.w.dspark.stages.size());
  st.window = m.cfg.sliding_window;
  st.dim = m.cfg.head_dim;
  st.ring.assign(size_t(st.stages * st.window * st.dim), 0);
  return st;
}

int64_t dspark_tap_width(const io::ModelConfig& c) {
  return int64_t(c.dspark.target_layer_ids.size()) * c.hidden_size;
}

void dspark_tap(const io::ModelConfig& c, const float* X, int64_t rows, int64_t k, float* taps) {
  const int64_t n = c.hc_mult, D = c.hidden_size, width = dspark_tap_width(c);
  DSV4_CHECK(k >= 0 && (k + 1) * D <= width);
  // PyTorch's mean: an f32 sum, times the f32 factor 1/n (exact for n = 4), one bf16 rounding.
  const float inv_n = 1.0f / float(n);
  parallel_for_static(rows > 1, rows, [&](int64_t r, int64_t) {
    const float* Xr = X + r * n * D;
    float* tap = taps + r * width + k * D;
    for (int64_t d = 0; d < D; ++d) {
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) sum += Xr[j * D + d];
      tap[d] = round_bf16(sum * inv_n);
    }
  });
}

Status dspark_absorb(const Model& m, DsparkState& st, const float* taps, int64_t n, Scratch& s) {
  DSV4_TRY(check_state(m, st, "dspark_absorb"));
  if (n < 0) return Status::invalid_argument("dspark_absorb: negative row count");
  if (n > 0 && taps == nullptr) return Status::invalid_argument("dspark_absorb: no taps");
  const io::ModelConfig& c = m.cfg;
  const DsparkWeights& d = m.w.dspark;
  const int64_t D = c.hidden_size, Dh = c.head_dim, W = st.window, width = dspark_tap_width(c);
  // Rows before the last W would only be overwritten in the rings (slot p mod W).
  const int64_t skip = std::max<int64_t>(0, n - W), rows = n - skip;
  Arena& A = s.main;
  ArenaScope scope(A);
  int64_t* positions = A.alloc<int64_t>(rows);
  for (int64_t i = 0; i < rows; ++i) positions[i] = st.pos + skip + i;
  // addendum §A4.3: main_x = RMSNorm(GEMM_fp8(H_T, main_proj), main_norm), bf16 [D] per position.
  float* main_x = A.alloc<float>(rows * D);
  linear({LinearKind::quantized, d.main_proj, taps + skip * width, rows, main_x}, A);
  for (int64_t i = 0; i < rows; ++i)
    kernels::rms_norm(main_x + i * D, d.main_norm.data(), D, float(c.rms_norm_eps), main_x + i * D);
  // addendum §A4.4: each stage's raw entry of main_x, as its attention makes one (spec §5.3).
  float* mk = A.alloc<float>(rows * Dh);
  for (int64_t k = 0; k < st.stages; ++k) {
    stage_entries(m, d.stages[size_t(k)], main_x, positions, rows, mk, A);
    for (int64_t i = 0; i < rows; ++i) {
      uint16_t* slot = st.ring.data() + (k * W + positions[i] % W) * Dh;
      for (int64_t e = 0; e < Dh; ++e) slot[e] = f32_to_bf16(mk[i * Dh + e]);   // lossless: bf16-valued
    }
  }
  st.pos += n;
  return Status::ok_status();
}

void dspark_attention(const Model& m, const DsparkState& st, int64_t stage, const Batch& batch, const float* x,
                      float* out, Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim;
  const int64_t filled = std::min(st.window, st.pos);
  DSV4_CHECK(filled >= 1 && stage >= 0 && stage < st.stages);
  const BlockWeights& b = m.w.dspark.stages[size_t(stage)];
  Arena& A = s.main;
  ArenaScope scope(A);
  // Steps 2-3: q and the rows' own entries, as the target's SWA attention makes them.
  const QueryEntries p = stage_rows(m, b, batch, x, A);
  uint16_t* block_kv = A.alloc<uint16_t>(rows * Dh);   // lossless: kv is bf16-valued (spec §5.3)
  for (int64_t i = 0; i < rows * Dh; ++i) block_kv[i] = f32_to_bf16(p.kv[i]);
  // Steps 4-5: one bank for every row, the filled ring slots in slot order, then the block's
  // entries; these start a new block of the online softmax, as in the reference's index list
  // [slots, -1 up to W, W .. W+γ-1].
  const uint16_t** bank = A.alloc<const uint16_t*>(filled + rows);
  for (int64_t j = 0; j < filled; ++j) bank[j] = st.slot(stage, j);
  for (int64_t i = 0; i < rows; ++i) bank[filled + i] = block_kv + i * Dh;
  // Steps 6-8: sink attention, de-rotation at the row's position, grouped output projection.
  float* o = A.alloc<float>(rows * H * Dh);
  parallel_for_dynamic(true, rows, [&](int64_t i, int64_t) {
    attend_query(m, b, p.q + i * H * Dh, bank, filled, filled + rows, batch.positions[size_t(i)], o + i * H * Dh);
  });
  grouped_output_projection(m, b.attn, o, rows, out, A);
}

Status dspark_draft_block(const Model& m, const DsparkState& st, int32_t anchor, float* base_logits, float* y,
                          Scratch& s) {
  DSV4_TRY(check_state(m, st, "dspark_draft_block"));
  const io::ModelConfig& c = m.cfg;
  if (st.pos == 0) return Status::invalid_argument("dspark_draft_block: nothing absorbed yet (the rings are empty)");
  if (anchor < 0 || anchor >= c.vocab_size)
    return Status::invalid_argument("dspark_draft_block: anchor " + std::to_string(anchor) +
                                    " is outside the vocabulary");
  const DsparkWeights& d = m.w.dspark;
  const int64_t G = c.dspark.block_size, n = c.hc_mult, D = c.hidden_size;
  Arena& A = s.main;
  ArenaScope scope(A);
  // addendum §A4.5: [A, NOISE x (γ-1)] at positions P+1 .. P+γ.
  int32_t* ids = A.alloc<int32_t>(G);
  ids[0] = anchor;
  for (int64_t i = 1; i < G; ++i) ids[i] = int32_t(c.dspark.noise_token_id);
  Batch& batch = s.own_batch;
  batch.clear();
  batch.add(nullptr, ids, G, st.pos);
  float* X = A.alloc<float>(G * n * D);
  embed_rows(m, ids, G, X);
  // addendum §A4.6-§A4.8: the stages in order, each a main block with DSpark attention. V4.1
  // (v4.1 §7.4): V4.1 blocks, their lagged pre threaded from stage to stage from the one-hot.
  const bool v41 = is_v41(m);
  float* pre = v41 ? A.alloc<float>(G * n) : nullptr;
  if (v41) identity_pre(c, G, pre);
  for (int64_t k = 0; k < st.stages; ++k) {
    const BlockWeights& b = d.stages[size_t(k)];
    auto attention = [&](const float* x, float* out) { dspark_attention(m, st, k, batch, x, out, s); };
    if (v41) run_block_v41(m, b, batch, X, pre, s, attention);
    else run_block(m, b, batch, X, s, attention);
  }
  // addendum §A4.9: y before the norm (V4: hc_head; V4.1: hc_pre with the last stage's FFN pre,
  // v4.1 §7.4), base logits of every row after it.
  if (v41) {
    const HcParams p = hc_params(c);
    for (int64_t i = 0; i < G; ++i) hc_collapse(p, X + i * n * D, pre + i * n, y + i * D);
  } else {
    int64_t* rows = A.alloc<int64_t>(G);
    for (int64_t i = 0; i < G; ++i) rows[i] = i;
    head_collapse(m, d.head, X, std::span<const int64_t>(rows, size_t(G)), y);
  }
  head_norm_logits(m, d.head, y, G, base_logits, s);
  return Status::ok_status();
}

void dspark_markov_add(const Model& m, int32_t prev_token, float* logits, Scratch& s) {
  const int64_t r = m.cfg.dspark.markov_rank, V = m.cfg.vocab_size;
  ArenaScope scope(s.main);
  float* e = s.main.alloc<float>(r);
  markov_embedding(m, prev_token, e);
  float* bias = s.main.alloc<float>(V);
  linear({LinearKind::f32, m.w.dspark.markov_w2, e, 1, bias}, s.main);
  for (int64_t v = 0; v < V; ++v) logits[v] += bias[v];
}

float dspark_confidence(const Model& m, const float* y, int32_t prev_token, Scratch& s) {
  const int64_t D = m.cfg.hidden_size, r = m.cfg.dspark.markov_rank;
  ArenaScope scope(s.main);
  float* in = s.main.alloc<float>(D + r);   // [y; e]
  std::copy(y, y + D, in);
  markov_embedding(m, prev_token, in + D);
  kernels::WeightView proj;   // f32 [1, D + r]
  proj.dtype = DType::f32;
  proj.rows = 1;
  proj.cols = D + r;
  proj.data = m.w.dspark.confidence_proj.data();
  float c = 0.0f;
  linear({LinearKind::f32, proj, in, 1, &c}, s.main);
  return c;
}

}  // namespace dsv4::model

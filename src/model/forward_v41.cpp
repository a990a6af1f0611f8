#include "model/forward_v41.h"

#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu/norms.h"
#include "model/attention_v41.h"
#include "model/chunk_undo.h"
#include "model/dspark.h"
#include "model/engram.h"
#include "model/forward.h"
#include "model/hc.h"
#include "model/moe.h"
#include "model/step_times.h"

namespace dsv4::model {

namespace {

// v4.1 §5.2.2, one sub-layer's input: the maps of this site from X (pre_next, post, comb), and
// x = RMSNorm(hc_pre(X, pre_prev)) with the previous sub-layer's pre.
void lagged_pre_sublayer(const HcParams& p, const HcWeights& hc, const std::vector<float>& norm, float eps,
                         const float* X, const float* pre_prev, int64_t rows, float* x, float* pre_next, float* post,
                         float* comb) {
  const int64_t n = p.n_hc, D = p.dim;
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    const float* Xt = X + t * n * D;
    hc_mixes(hc, p, Xt, pre_next + t * n, post + t * n, comb + t * n * n);
    hc_collapse(p, Xt, pre_prev + t * n, x + t * D);
    kernels::rms_norm(x + t * D, norm.data(), D, eps, x + t * D);
  });
}

// v4.1 §5.3.2 for every row and Engram layer, up front: rows [K, batch rows, columns].
int64_t* engram_hash_rows(const Model& m, const Batch& batch, Arena& A) {
  const EngramHasher& h = m.engram;
  const int64_t K = int64_t(h.layers.size()), cols = h.columns(), rows = batch.rows();
  int64_t* out = A.alloc<int64_t>(K * rows * cols);
  int32_t tok[8];
  DSV4_CHECK(h.max_ngram <= 8);
  for (const Segment& seg : batch.segments) {
    ArenaScope scope(A);
    int32_t* ids = A.alloc<int32_t>(seg.n);
    for (int64_t i = 0; i < seg.n; ++i) ids[i] = h.cmap[size_t(seg.tokens[i])];   // text: never DEAD
    for (int64_t i = 0; i < seg.n; ++i) {
      engram_lookback(h, ids, i, seg.start_pos, seg.seq->engram_history.data(), tok);
      for (int64_t k = 0; k < K; ++k) h.rows(k, tok, out + (k * rows + seg.row0 + i) * cols);
    }
  }
  return out;
}

// After the chunk: the compressed ids of the last positions (v4.1 §8.2, §9). A chunk run undoable
// logs its ids, so that a cut can rebuild the lookback of the kept prefix (model/chunk_undo.h).
void advance_engram_history(const EngramHasher& h, const Segment& seg, Arena& A) {
  ArenaScope scope(A);
  int32_t* ids = A.alloc<int32_t>(seg.n);
  for (int64_t i = 0; i < seg.n; ++i) ids[i] = h.cmap[size_t(seg.tokens[i])];
  engram_push_history(seg.seq->engram_history, ids, seg.n);
  ChunkUndo& u = seg.seq->undo;
  if (u.start == seg.start_pos && u.n == seg.n) u.engram_ids.assign(ids, ids + seg.n);
}

}  // namespace

void identity_pre(const io::ModelConfig& c, int64_t rows, float* pre) {
  const int64_t n = c.hc_mult;
  for (int64_t i = 0; i < rows * n; ++i) pre[i] = i % n == 0 ? 1.0f : 0.0f;
}

void run_block_v41(const Model& m, const BlockWeights& b, const Batch& batch, float* X, float* pre, Scratch& s,
                   AttentionSublayer attention) {
  const io::ModelConfig& c = m.cfg;
  const HcParams p = hc_params(c);
  const int64_t rows = batch.rows(), D = c.hidden_size, n = p.n_hc;
  const float eps = float(c.rms_norm_eps);
  ArenaScope scope(s.main);
  float* x = s.main.alloc<float>(rows * D);
  float* out = s.main.alloc<float>(rows * D);
  float* pre_attn = s.main.alloc<float>(rows * n);
  float* post = s.main.alloc<float>(rows * n);
  float* comb = s.main.alloc<float>(rows * n * n);

  lagged_pre_sublayer(p, b.hc_attn, b.attn_norm, eps, X, pre, rows, x, pre_attn, post, comb);
  {
    AddElapsed t(s.times ? &s.times->attention_s : nullptr);
    attention(x, out);
  }
  hc_post_rows(p, out, post, comb, rows, X);

  lagged_pre_sublayer(p, b.hc_ffn, b.ffn_norm, eps, X, pre_attn, rows, x, pre, post, comb);
  {
    AddElapsed t(s.times ? &s.times->ffn_s : nullptr);
    moe_forward(m, b, x, batch.tokens.data(), rows, out, s);
  }
  hc_post_rows(p, out, post, comb, rows, X);
}

void forward_streams_v41(const Model& m, const Batch& batch, float* out, Scratch& s, float* taps) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), n = c.hc_mult, D = c.hidden_size, cols = m.engram.columns();
  Arena& A = s.main;
  ArenaScope scope(A);
  float* X = A.alloc<float>(rows * n * D);
  float* pre = A.alloc<float>(rows * n);
  embed_rows(m, batch.tokens.data(), rows, X);
  identity_pre(c, rows, pre);   // layer 0's attention input is stream 0
  const int64_t* hashes = engram_hash_rows(m, batch, A);
  V41Selection sel = make_v41_selection(c, rows, A);
  const std::vector<int64_t>& tapped = c.dspark.target_layer_ids;   // strictly increasing (io/config)
  size_t k = 0;   // the next tap
  for (const BlockWeights& b : m.w.blocks) {
    if (b.has_engram) engram_forward(m, b, hashes + b.engram.index * rows * cols, rows, X, s);
    if (taps != nullptr && k < tapped.size() && b.layer == tapped[k]) dspark_tap(c, X, rows, int64_t(k++), taps);
    run_block_v41(m, b, batch, X, pre, s,
                  [&](const float* x, float* o) { attention_v41(m, b, batch, x, o, sel, s); });
  }
  for (const Segment& seg : batch.segments) {
    advance_engram_history(m.engram, seg, A);
    seg.seq->pos += seg.n;
  }
  const int64_t width = stream_width(c);
  for (int64_t t = 0; t < rows; ++t) {
    std::copy(X + t * n * D, X + (t + 1) * n * D, out + t * width);
    std::copy(pre + t * n, pre + (t + 1) * n, out + t * width + n * D);
  }
}

}  // namespace dsv4::model

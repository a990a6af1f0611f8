#include "model/forward.h"

#include <string>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/norms.h"
#include "model/attention.h"
#include "model/block_probe.h"
#include "model/dspark.h"
#include "model/forward_v41.h"
#include "model/hc.h"
#include "model/linear.h"
#include "model/moe.h"
#include "model/step_times.h"

namespace dsv4::model {

namespace {

// u = hc_pre(X) then RMSNorm; keeps post/comb for the matching hc_post. u_sum, if set, receives
// hc_pre's sums before their bf16 rounding (a diagnostic, block_probe.h).
void pre_sublayer(const HcParams& p, const HcWeights& hc, const std::vector<float>& norm, float eps, const float* X,
                  int64_t rows, float* x, float* post, float* comb, float* u_sum) {
  const int64_t n = p.n_hc, D = p.dim;
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float* u = x + t * D;
    hc_pre(hc, p, X + t * n * D, u, post + t * n, comb + t * n * n, u_sum ? u_sum + t * D : nullptr);
    kernels::rms_norm(u, norm.data(), D, eps, u);
  });
}

}  // namespace

int64_t stream_width(const io::ModelConfig& c) {
  const int64_t streams = c.hc_mult * c.hidden_size;
  return c.architecture == io::Architecture::v41 ? streams + c.hc_mult : streams;
}

void embed_rows(const Model& m, const int32_t* tokens, int64_t rows, float* X) {
  const int64_t n = m.cfg.hc_mult, D = m.cfg.hidden_size;
  for (int64_t t = 0; t < rows; ++t) {
    const uint16_t* e = m.w.embed + int64_t(tokens[t]) * D;
    for (int64_t s = 0; s < n; ++s)
      for (int64_t d = 0; d < D; ++d) X[(t * n + s) * D + d] = bf16_to_f32(e[d]);
  }
}

void run_block(const Model& m, const BlockWeights& b, const Batch& batch, float* X, Scratch& s) {
  run_block(m, b, batch, X, s, [&](const float* x, float* out) { attention_forward(m, b, batch, x, out, s); });
}

void run_block(const Model& m, const BlockWeights& b, const Batch& batch, float* X, Scratch& s,
               AttentionSublayer attention) {
  const io::ModelConfig& c = m.cfg;
  const HcParams p = hc_params(c);
  const int64_t rows = batch.rows(), D = c.hidden_size, n = p.n_hc;
  const float eps = float(c.rms_norm_eps);
  ArenaScope scope(s.main);
  float* x = s.main.alloc<float>(rows * D);
  float* post = s.main.alloc<float>(rows * n);
  float* comb = s.main.alloc<float>(rows * n * n);
  float* out = s.main.alloc<float>(rows * D);
  BlockProbe* probe = s.probe && s.probe->watches(b.layer) ? s.probe : nullptr;
  float* u_sum = probe ? s.main.alloc<float>(rows * D) : nullptr;
  auto record = [&](const char* name, const float* data, int64_t width) {
    if (probe) probe->record(name, batch.positions.data(), rows, width, data);
  };
  auto record_pre = [&](const char* prefix) {
    if (!probe) return;
    const std::string pre(prefix);
    record((pre + ".u_sum").c_str(), u_sum, D);
    record((pre + ".x").c_str(), x, D);
    record((pre + ".post").c_str(), post, n);
    record((pre + ".comb").c_str(), comb, n * n);
  };

  record("in", X, n * D);
  pre_sublayer(p, b.hc_attn, b.attn_norm, eps, X, rows, x, post, comb, u_sum);
  record_pre("attn");
  {
    AddElapsed t(s.times ? &s.times->attention_s : nullptr);
    attention(x, out);
  }
  record("attn.out", out, D);
  hc_post_rows(p, out, post, comb, rows, X);
  record("attn.X", X, n * D);

  pre_sublayer(p, b.hc_ffn, b.ffn_norm, eps, X, rows, x, post, comb, u_sum);
  record_pre("ffn");
  {
    AddElapsed t(s.times ? &s.times->ffn_s : nullptr);
    moe_forward(m, b, x, batch.tokens.data(), rows, out, s);
  }
  record("ffn.out", out, D);
  hc_post_rows(p, out, post, comb, rows, X);
  record("out", X, n * D);
}

void head_logits(const Model& m, const HeadWeights& head, const float* X, std::span<const int64_t> rows, float* logits,
                 Scratch& s) {
  const int64_t R = int64_t(rows.size());
  AddElapsed t(s.times ? &s.times->head_s : nullptr);
  ArenaScope scope(s.main);
  float* y = s.main.alloc<float>(R * m.cfg.hidden_size);
  head_collapse(m, head, X, rows, y);
  head_norm_logits(m, head, y, R, logits, s);
}

void head_collapse(const Model& m, const HeadWeights& head, const float* X, std::span<const int64_t> rows, float* y) {
  const io::ModelConfig& c = m.cfg;
  const HcParams p = hc_params(c);
  const int64_t D = c.hidden_size, width = stream_width(c);
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* Xr = X + rows[i] * width;
    if (head.lagged_pre) hc_collapse(p, Xr, Xr + c.hc_mult * D, y + int64_t(i) * D);
    else hc_head(head.hc, p, Xr, y + int64_t(i) * D);
  }
}

void head_norm_logits(const Model& m, const HeadWeights& head, const float* y, int64_t R, float* logits, Scratch& s) {
  const int64_t D = m.cfg.hidden_size;
  ArenaScope scope(s.main);
  float* yn = s.main.alloc<float>(R * D);
  for (int64_t i = 0; i < R; ++i)
    kernels::rms_norm(y + i * D, head.norm.data(), D, float(m.cfg.rms_norm_eps), yn + i * D);
  linear({LinearKind::f32, m.w.head, yn, R, logits}, s.main);
}

void forward_streams(const Model& m, const Batch& batch, float* X, Scratch& s, float* taps) {
  const std::vector<int64_t>& tapped = m.cfg.dspark.target_layer_ids;   // strictly increasing (io/config)
  DSV4_CHECK(taps == nullptr || m.cfg.drafter() == io::DrafterKind::dspark);
  if (m.cfg.architecture == io::Architecture::v41) {
    forward_streams_v41(m, batch, X, s, taps);
    return;
  }
  embed_rows(m, batch.tokens.data(), batch.rows(), X);
  size_t k = 0;   // the next tap
  for (const BlockWeights& b : m.w.blocks) {
    run_block(m, b, batch, X, s);
    if (taps != nullptr && k < tapped.size() && b.layer == tapped[k])
      dspark_tap(m.cfg, X, batch.rows(), int64_t(k++), taps);
  }
  for (const Segment& seg : batch.segments) seg.seq->pos += seg.n;
}

void mtp_forward(const Model& m, SequenceState& seq, const float* h, const int32_t* next_tokens, int64_t n,
                 int64_t logit_rows, float* logits, Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const int64_t nh = c.hc_mult, D = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  const MtpWeights& w = m.w.mtp;
  Arena& A = s.main;
  ArenaScope scope(A);
  // spec §5.11: e = enorm(embed[t_{i+1}]), hn = hnorm per stream; X' = e_proj(e) + h_proj(hn).
  float* e = A.alloc<float>(n * D);
  float* hn = A.alloc<float>(n * nh * D);
  float* pe = A.alloc<float>(n * D);
  float* ph = A.alloc<float>(n * nh * D);
  for (int64_t t = 0; t < n; ++t) {
    const uint16_t* row = m.w.embed + int64_t(next_tokens[t]) * D;
    for (int64_t d = 0; d < D; ++d) e[t * D + d] = bf16_to_f32(row[d]);
    kernels::rms_norm(e + t * D, w.enorm.data(), D, eps, e + t * D);
    for (int64_t k = 0; k < nh; ++k) kernels::rms_norm(h + (t * nh + k) * D, w.hnorm.data(), D, eps, hn + (t * nh + k) * D);
  }
  linear({LinearKind::quantized, w.e_proj, e, n, pe}, A);
  linear({LinearKind::quantized, w.h_proj, hn, n * nh, ph}, A);
  float* X = A.alloc<float>(n * nh * D);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < nh; ++k)
      for (int64_t d = 0; d < D; ++d) X[(t * nh + k) * D + d] = round_bf16(pe[t * D + d] + ph[(t * nh + k) * D + d]);
  Batch& batch = s.own_batch;
  batch.clear();
  batch.add(&seq, next_tokens, n, seq.mtp_pos);
  run_block(m, w.block, batch, X, s);
  seq.mtp_pos += n;
  if (logit_rows <= 0) return;
  int64_t* rows = A.alloc<int64_t>(logit_rows);
  for (int64_t t = 0; t < logit_rows; ++t) rows[t] = n - logit_rows + t;
  head_logits(m, w.head, X, std::span<const int64_t>(rows, size_t(logit_rows)), logits, s);
}

}  // namespace dsv4::model

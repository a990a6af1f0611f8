#include "model/forward.h"

#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/norms.h"
#include "model/attention.h"
#include "model/hc.h"
#include "model/linear.h"
#include "model/moe.h"

namespace dsv4::model {

namespace {

HcParams hc_params(const io::ModelConfig& c) {
  HcParams p;
  p.n_hc = c.hc_mult;
  p.dim = c.hidden_size;
  p.iters = int(c.hc_sinkhorn_iters);
  p.norm_eps = float(c.rms_norm_eps);
  p.hc_eps = float(c.hc_eps);
  return p;
}

// u = hc_pre(X) then RMSNorm; keeps post/comb for the matching hc_post.
void pre_sublayer(const HcParams& p, const HcWeights& hc, const std::vector<float>& norm, float eps,
                  const Streams& X, int64_t rows, std::vector<float>& x, std::vector<float>& post,
                  std::vector<float>& comb) {
  const int64_t n = p.n_hc, D = p.dim;
  x.resize(size_t(rows * D));
  post.resize(size_t(rows * n));
  comb.resize(size_t(rows * n * n));
#pragma omp parallel for schedule(static) if (rows > 1)
  for (int64_t t = 0; t < rows; ++t) {
    float* u = &x[size_t(t * D)];
    hc_pre(hc, p, &X[size_t(t * n * D)], u, &post[size_t(t * n)], &comb[size_t(t * n * n)]);
    kernels::rms_norm(u, norm.data(), D, eps, u);
  }
}

void post_sublayer(const HcParams& p, const std::vector<float>& out, const std::vector<float>& post,
                   const std::vector<float>& comb, int64_t rows, Streams& X) {
  const int64_t n = p.n_hc, D = p.dim;
#pragma omp parallel if (rows > 1)
  {
    std::vector<float> next(size_t(n * D));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < rows; ++t) {
      float* Xt = &X[size_t(t * n * D)];
      hc_post(p, &out[size_t(t * D)], Xt, &post[size_t(t * n)], &comb[size_t(t * n * n)], next.data());
      std::copy(next.begin(), next.end(), Xt);
    }
  }
}

}  // namespace

void embed_rows(const Model& m, const int32_t* tokens, int64_t rows, Streams& X) {
  const int64_t n = m.cfg.hc_mult, D = m.cfg.hidden_size;
  X.resize(size_t(rows * n * D));
  for (int64_t t = 0; t < rows; ++t) {
    const uint16_t* e = m.w.embed + int64_t(tokens[t]) * D;
    for (int64_t s = 0; s < n; ++s)
      for (int64_t d = 0; d < D; ++d) X[size_t((t * n + s) * D + d)] = bf16_to_f32(e[d]);
  }
}

void run_block(const Model& m, const BlockWeights& b, const Batch& batch, Streams& X) {
  const io::ModelConfig& c = m.cfg;
  const HcParams p = hc_params(c);
  const int64_t rows = batch.rows(), D = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  std::vector<float> x, post, comb, out(size_t(rows * D));

  pre_sublayer(p, b.hc_attn, b.attn_norm, eps, X, rows, x, post, comb);
  attention_forward(m, b, batch, x.data(), out.data());
  post_sublayer(p, out, post, comb, rows, X);

  pre_sublayer(p, b.hc_ffn, b.ffn_norm, eps, X, rows, x, post, comb);
  moe_forward(m, b, x.data(), batch.tokens.data(), rows, out.data());
  post_sublayer(p, out, post, comb, rows, X);
}

void head_logits(const Model& m, const HeadWeights& head, const Streams& X, const std::vector<int64_t>& rows,
                 float* logits) {
  const io::ModelConfig& c = m.cfg;
  const HcParams p = hc_params(c);
  const int64_t n = c.hc_mult, D = c.hidden_size;
  std::vector<float> y(rows.size() * size_t(D));
  for (size_t i = 0; i < rows.size(); ++i) {
    float* yi = &y[i * size_t(D)];
    hc_head(head.hc, p, &X[size_t(rows[i] * n * D)], yi);
    kernels::rms_norm(yi, head.norm.data(), D, float(c.rms_norm_eps), yi);
  }
  linear_f32(m.w.head, y.data(), int64_t(rows.size()), logits);
}

Streams forward_streams(const Model& m, const Batch& batch) {
  Streams X;
  embed_rows(m, batch.tokens.data(), batch.rows(), X);
  for (const BlockWeights& b : m.w.blocks) run_block(m, b, batch, X);
  for (const Segment& s : batch.segments) s.seq->pos += s.n;
  return X;
}

void mtp_forward(const Model& m, SequenceState& seq, const float* h, const int32_t* next_tokens, int64_t n,
                 float* logits) {
  const io::ModelConfig& c = m.cfg;
  const int64_t nh = c.hc_mult, D = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  const MtpWeights& w = m.w.mtp;
  // spec §5.11: e = enorm(embed[t_{i+1}]), hn = hnorm per stream; X' = e_proj(e) + h_proj(hn).
  std::vector<float> e(size_t(n * D)), hn(size_t(n * nh * D)), pe(size_t(n * D)), ph(size_t(n * nh * D));
  for (int64_t t = 0; t < n; ++t) {
    const uint16_t* row = m.w.embed + int64_t(next_tokens[t]) * D;
    for (int64_t d = 0; d < D; ++d) e[size_t(t * D + d)] = bf16_to_f32(row[d]);
    kernels::rms_norm(&e[size_t(t * D)], w.enorm.data(), D, eps, &e[size_t(t * D)]);
    for (int64_t s = 0; s < nh; ++s)
      kernels::rms_norm(h + (t * nh + s) * D, w.hnorm.data(), D, eps, &hn[size_t((t * nh + s) * D)]);
  }
  linear_quant(w.e_proj, e.data(), n, pe.data());
  linear_quant(w.h_proj, hn.data(), n * nh, ph.data());
  Streams X(size_t(n * nh * D));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t s = 0; s < nh; ++s)
      for (int64_t d = 0; d < D; ++d)
        X[size_t((t * nh + s) * D + d)] = round_bf16(pe[size_t(t * D + d)] + ph[size_t((t * nh + s) * D + d)]);
  Batch batch;
  batch.add(&seq, next_tokens, n, seq.mtp_pos);
  run_block(m, w.block, batch, X);
  seq.mtp_pos += n;
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) rows[size_t(t)] = t;
  head_logits(m, w.head, X, rows, logits);
}

}  // namespace dsv4::model

#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "kernels/cpu/sparse_attn.h"
#include "model/compressor.h"
#include "model/indexer.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

constexpr int kKvSimBlock = 64;   // FP8 simulation of stored KV, nope dims only (spec §5.3)

struct QueryKv {
  std::vector<float> qr, q, kv;        // [rows, Rq], [rows, H·Dh], [rows, Dh]
};

// spec §5.3: q and kv paths for every row at its own position.
void project_q_kv(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, QueryKv& o) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim, Rq = c.q_lora_rank;
  const float eps = float(c.rms_norm_eps);
  const AttentionWeights& a = b.attn;
  o.qr.resize(size_t(rows * Rq));
  o.q.resize(size_t(rows * H * Dh));
  o.kv.resize(size_t(rows * Dh));
  linear_quant(a.wq_a, x, rows, o.qr.data());
  for (int64_t t = 0; t < rows; ++t) kernels::rms_norm(&o.qr[size_t(t * Rq)], a.q_norm.data(), Rq, eps, &o.qr[size_t(t * Rq)]);
  linear_quant(a.wq_b, o.qr.data(), rows, o.q.data());
  linear_quant(a.wkv, x, rows, o.kv.data());
  const kernels::RopeFreqs& rope = m.rope_for(b.ratio);
#pragma omp parallel if (rows > 1)
  {
    std::vector<float> cs(size_t(rope.rope_dim));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < rows; ++t) {
      kernels::rope_angles(rope, batch.positions[size_t(t)], cs.data());
      for (int64_t h = 0; h < H; ++h) {
        float* qh = &o.q[size_t((t * H + h) * Dh)];
        kernels::head_rms_norm_bf16(qh, Dh, eps);
        kernels::rope_apply(qh, Dh, rope.rope_dim, cs.data(), false);
      }
      float* kv = &o.kv[size_t(t * Dh)];
      kernels::rms_norm(kv, a.kv_norm.data(), Dh, eps, kv);
      kernels::rope_apply(kv, Dh, rope.rope_dim, cs.data(), false);
      kernels::act_quant_fp8(kv, Dh - rope.rope_dim, kKvSimBlock);
    }
  }
}

// Runs a compressor over the rows of one segment in position order (spec §5.5, §5.13 step 2).
void run_compressor(const Model& m, const CompressorWeights& w, CompressorKind kind, const Batch& batch,
                    const Segment& seg, const float* kvp, const float* score, CompressorState& st,
                    std::vector<uint16_t>& entries) {
  const kernels::RopeFreqs& rope = m.rope_for(int(w.ratio));
  for (int64_t i = 0; i < seg.n; ++i) {
    const int64_t r = seg.row0 + i;
    compressor_push(w, kind, rope, float(m.cfg.rms_norm_eps), st, batch.positions[size_t(r)],
                    kvp + r * w.width, score + r * w.width, entries);
  }
}

}  // namespace

void attention_forward(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim, W = c.sliding_window;
  const int ratio = b.ratio;
  const AttentionWeights& a = b.attn;

  QueryKv qkv;
  project_q_kv(m, b, batch, x, qkv);

  // Compressor projections (f32) for every row; the state machines run per segment below.
  std::vector<float> ckv, cscore, ikv, iscore, qI, iweights;
  if (ratio > 0) {
    ckv.resize(size_t(rows * a.compressor.width));
    cscore.resize(ckv.size());
    compressor_project(a.compressor, x, rows, batch.positions.data(), ckv.data(), cscore.data());
  }
  if (ratio == 4) {
    const IndexerWeights& iw = a.indexer;
    ikv.resize(size_t(rows * iw.compressor.width));
    iscore.resize(ikv.size());
    compressor_project(iw.compressor, x, rows, batch.positions.data(), ikv.data(), iscore.data());
    qI.resize(size_t(rows * c.index_n_heads * c.index_head_dim));
    iweights.resize(size_t(rows * c.index_n_heads));
    indexer_queries(m, iw, x, qkv.qr.data(), rows, batch.positions.data(), qI.data(), iweights.data());
  }

  std::vector<float> o(size_t(rows * H * Dh));
  const float scale = float(1.0 / std::sqrt(double(Dh)));
  const kernels::RopeFreqs& rope = m.rope_for(ratio);
  for (const Segment& seg : batch.segments) {
    LayerState& st = seg.seq->layers[size_t(b.layer)];
    if (ratio > 0)
      run_compressor(m, a.compressor, CompressorKind::main, batch, seg, ckv.data(), cscore.data(), st.comp_state, st.comp);
    if (ratio == 4)
      run_compressor(m, a.indexer.compressor, CompressorKind::indexer, batch, seg, ikv.data(), iscore.data(),
                     st.idx_state, st.idx);

    // Window source: the previous min(P, W-1) positions from the ring, then the chunk's rows.
    const int64_t P = seg.start_pos;
    const int64_t prev = std::min<int64_t>(P, W - 1);
    std::vector<float> win(size_t((prev + seg.n) * Dh));
    for (int64_t i = 0; i < prev; ++i) {
      const int64_t p = P - prev + i;
      const uint16_t* src = &st.ring[size_t((p % W) * Dh)];
      for (int64_t d = 0; d < Dh; ++d) win[size_t(i * Dh + d)] = bf16_to_f32(src[d]);
    }
    std::copy(qkv.kv.begin() + seg.row0 * Dh, qkv.kv.begin() + (seg.row0 + seg.n) * Dh, win.begin() + prev * Dh);

#pragma omp parallel if (seg.n > 1 || H * Dh * (W + c.index_topk) > (1 << 18))
    {
      std::vector<float> entries;
      std::vector<int64_t> selected;
      std::vector<float> cs(size_t(rope.rope_dim));
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < seg.n; ++i) {
        const int64_t r = seg.row0 + i, t = P + i;
        // spec §5.4: raw window max(0, t-W+1)..t, then the visible compressed entries.
        const int64_t w0 = std::max<int64_t>(0, t - W + 1);
        const int64_t n_win = t - w0 + 1;
        const float* wsrc = &win[size_t((w0 - (P - prev)) * Dh)];
        selected.clear();
        if (ratio == 128) {
          for (int64_t j = 0; j < (t + 1) / 128; ++j) selected.push_back(j);
        } else if (ratio == 4) {
          indexer_select(m, &qI[size_t(r * c.index_n_heads * c.index_head_dim)], &iweights[size_t(r * c.index_n_heads)],
                         st.idx, (t + 1) / 4, selected);
        }
        entries.resize(size_t((n_win + int64_t(selected.size())) * Dh));
        std::copy(wsrc, wsrc + n_win * Dh, entries.begin());
        for (size_t k = 0; k < selected.size(); ++k) {
          const uint16_t* src = &st.comp[size_t(selected[k] * Dh)];
          float* dst = &entries[size_t((n_win + int64_t(k)) * Dh)];
          for (int64_t d = 0; d < Dh; ++d) dst[d] = bf16_to_f32(src[d]);
        }
        float* oh = &o[size_t(r * H * Dh)];
        kernels::attention_with_sink(&qkv.q[size_t(r * H * Dh)], H, entries.data(), n_win,
                                     n_win + int64_t(selected.size()),
                                     Dh, scale, a.attn_sink, oh);
        kernels::rope_angles(rope, t, cs.data());
        for (int64_t h = 0; h < H; ++h) kernels::rope_apply(oh + h * Dh, Dh, rope.rope_dim, cs.data(), true);
      }
    }
    // Ring keeps the last W raw entries at slot p mod W (spec §5.13 step 4).
    for (int64_t i = std::max<int64_t>(0, seg.n - W); i < seg.n; ++i) {
      const int64_t p = P + i;
      const float* src = &qkv.kv[size_t((seg.row0 + i) * Dh)];
      uint16_t* dst = &st.ring[size_t((p % W) * Dh)];
      for (int64_t d = 0; d < Dh; ++d) dst[d] = f32_to_bf16(src[d]);
    }
  }

  // Grouped output projection (spec §5.8): z_g = bf16(o_g · wo_a[g]ᵀ), then FP8 GEMM with wo_b.
  const int64_t G = c.o_groups, Ro = c.o_lora_rank, gw = H * Dh / G;
  std::vector<float> og(size_t(rows * gw)), zg(size_t(rows * Ro)), z(size_t(rows * G * Ro));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t t = 0; t < rows; ++t)
      std::copy(&o[size_t(t * H * Dh + g * gw)], &o[size_t(t * H * Dh + (g + 1) * gw)], &og[size_t(t * gw)]);
    kernels::WeightView wg = a.wo_a;
    wg.rows = Ro;
    wg.data = static_cast<const uint8_t*>(a.wo_a.data) + g * Ro * a.wo_a.cols;
    wg.scale = a.wo_a.scale + (g * Ro / 128) * ((a.wo_a.cols + 127) / 128);
    linear_bf16(wg, og.data(), rows, zg.data());
    for (int64_t t = 0; t < rows; ++t)
      std::copy(&zg[size_t(t * Ro)], &zg[size_t((t + 1) * Ro)], &z[size_t(t * G * Ro + g * Ro)]);
  }
  linear_quant(a.wo_b, z.data(), rows, out);
}

}  // namespace dsv4::model

#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "kernels/cpu/sparse_attn.h"
#include "model/compressor.h"
#include "model/indexer.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

constexpr int kKvSimBlock = 64;   // FP8 simulation of stored KV, nope dims only (spec §5.3)
constexpr int64_t kMaxRopeDim = 256;
constexpr int kMaxProjections = 7;

// Rows [r0, r0 + n) of a weight matrix stored row-major in whole 128-row scale blocks (FP8) or
// without scales (BF16/F32): the per-group slice of wo_a (spec §5.8).
kernels::WeightView row_slice(const kernels::WeightView& w, int64_t r0, int64_t n) {
  DSV4_CHECK(w.dtype == DType::fp8_e4m3 || w.dtype == DType::bf16 || w.dtype == DType::f32);
  const int64_t elem = w.dtype == DType::fp8_e4m3 ? 1 : w.dtype == DType::bf16 ? 2 : 4;
  kernels::WeightView v = w;
  v.rows = n;
  v.data = static_cast<const uint8_t*>(w.data) + r0 * w.cols * elem;
  if (w.scale) v.scale = w.scale + (r0 / 128) * ((w.cols + 127) / 128);
  return v;
}

// spec §5.3 per row, after the projections: per-head unweighted q norm and RoPE; kv RMSNorm, RoPE,
// FP8 simulation of the nope dims.
void finish_q_kv(const Model& m, const BlockWeights& b, const Batch& batch, float* q, float* kv) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim;
  const float eps = float(c.rms_norm_eps);
  const kernels::RopeFreqs& rope = m.rope_for(b.kind);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float cs[kMaxRopeDim];
    kernels::rope_angles(rope, batch.positions[size_t(t)], cs);
    for (int64_t h = 0; h < H; ++h) {
      float* qh = q + (t * H + h) * Dh;
      kernels::head_rms_norm_bf16(qh, Dh, eps);
      kernels::rope_apply(qh, Dh, rope.rope_dim, cs, false);
    }
    float* kvt = kv + t * Dh;
    kernels::rms_norm(kvt, b.attn.kv_norm.data(), Dh, eps, kvt);
    kernels::rope_apply(kvt, Dh, rope.rope_dim, cs, false);
    kernels::act_quant_fp8(kvt, Dh - rope.rope_dim, kKvSimBlock);
  });
}

// Runs a compressor of block b over the rows of one segment in position order (spec §5.5, §5.13
// step 2).
void run_compressor(const Model& m, const BlockWeights& b, const CompressorWeights& w, CompressorKind kind,
                    const Batch& batch, const Segment& seg, const float* kvp, const float* score,
                    CompressorState& st, std::vector<uint16_t>& entries, Arena& a) {
  const kernels::RopeFreqs& rope = m.rope_for(b.kind);
  for (int64_t i = 0; i < seg.n; ++i) {
    const int64_t r = seg.row0 + i;
    compressor_push(w, kind, rope, float(m.cfg.rms_norm_eps), st, batch.positions[size_t(r)],
                    kvp + r * w.width, score + r * w.width, entries, a);
  }
}

// What one query of a segment reads: its q, the indexer query (CSA), where the window rows are.
struct QueryCtx {
  const Model* m;
  const BlockWeights* b;
  const LayerState* st;
  const uint16_t* chunk_kv;   // bf16 [seg.n, Dh]: this segment's own raw entries
  int64_t P;                  // first position of the segment
};

// Compressed entries visible to query position t: n_c(t) = floor((t+1)/m) (spec §5.4).
int64_t visible_entries(const CompressorWeights& w, int64_t t) { return (t + 1) / w.ratio; }

// The attended entry list of query position t (spec §5.4): the raw window max(0, t-W+1)..t, then
// the visible compressed entries (HCA: all, in order; CSA: the indexer's top-k). Returns the
// count; n_window gets the window part. `rows` needs room for max_entries(..., t).
int64_t gather_entries(const QueryCtx& q, int64_t t, const float* qI, const float* iw, bool parallel,
                       const uint16_t** rows, int64_t* n_window, Arena& a) {
  const io::ModelConfig& c = q.m->cfg;
  const int64_t W = c.sliding_window, Dh = c.head_dim;
  const io::LayerKind kind = q.b->kind;
  const CompressorWeights& cw = q.b->attn.compressor;
  const int64_t w0 = std::max<int64_t>(0, t - W + 1);
  int64_t n = 0;
  for (int64_t p = w0; p <= t; ++p)
    rows[n++] = p >= q.P ? q.chunk_kv + (p - q.P) * Dh : &q.st->ring[size_t((p % W) * Dh)];
  *n_window = n;
  switch (kind) {
    case io::LayerKind::swa:
      break;
    case io::LayerKind::hca:
      for (int64_t j = 0; j < visible_entries(cw, t); ++j) rows[n++] = &q.st->comp[size_t(j * Dh)];
      break;
    case io::LayerKind::csa: {
      ArenaScope scope(a);
      const int64_t visible = visible_entries(cw, t);
      int32_t* sel = a.alloc<int32_t>(std::min(c.index_topk, visible));
      const int64_t k = indexer_select(*q.m, qI, iw, q.st->idx, visible, parallel, sel, a);
      for (int64_t i = 0; i < k; ++i) rows[n++] = &q.st->comp[size_t(int64_t(sel[i]) * Dh)];
      break;
    }
  }
  return n;
}

// Room for the entry list of query position t: the window plus the compressed entries (spec §5.9).
int64_t max_entries(const io::ModelConfig& c, const BlockWeights& b, int64_t t) {
  switch (b.kind) {
    case io::LayerKind::swa: return c.sliding_window;
    case io::LayerKind::hca: return c.sliding_window + visible_entries(b.attn.compressor, t);
    case io::LayerKind::csa: return c.sliding_window + std::min(c.index_topk, visible_entries(b.attn.compressor, t));
  }
  return c.sliding_window;
}

}  // namespace

void attention_forward(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out,
                       Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim;
  const int64_t Rq = c.q_lora_rank, Hi = c.index_n_heads, Di = c.index_head_dim;
  const bool compressed = b.kind != io::LayerKind::swa, csa = b.kind == io::LayerKind::csa;
  const AttentionWeights& a = b.attn;
  const float eps = float(c.rms_norm_eps);
  Arena& A = s.main;
  ArenaScope scope(A);

  // Every product of x in one parallel region (spec §5.3 wq_a, wkv; §5.5 compressor wkv, wgate;
  // §5.6 weights_proj).
  float* qr = A.alloc<float>(rows * Rq);
  float* kv = A.alloc<float>(rows * Dh);
  float *ckv = nullptr, *cscore = nullptr, *ikv = nullptr, *iscore = nullptr, *iweights = nullptr, *qI = nullptr;
  LinearJob jobs[kMaxProjections];
  int nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_a, x, rows, qr};
  jobs[nj++] = {LinearKind::quantized, a.wkv, x, rows, kv};
  // The compressors' f32 products sum in the reference GPU's order (kernels/cpu/matmul.h
  // SumOrder::two_slices).
  if (compressed) {
    const int64_t cw = a.compressor.width;
    ckv = A.alloc<float>(rows * cw);
    cscore = A.alloc<float>(rows * cw);
    jobs[nj++] = {LinearKind::f32, a.compressor.wkv, x, rows, ckv, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::f32, a.compressor.wgate, x, rows, cscore, kernels::SumOrder::two_slices};
  }
  if (csa) {
    const CompressorWeights& ic = a.indexer.compressor;
    ikv = A.alloc<float>(rows * ic.width);
    iscore = A.alloc<float>(rows * ic.width);
    iweights = A.alloc<float>(rows * Hi);
    jobs[nj++] = {LinearKind::f32, ic.wkv, x, rows, ikv, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::f32, ic.wgate, x, rows, iscore, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::bf16, a.indexer.weights_proj, x, rows, iweights};
  }
  linear_many(jobs, nj, A);
  if (compressed) compressor_add_ape(a.compressor, rows, batch.positions.data(), cscore);
  if (csa) compressor_add_ape(a.indexer.compressor, rows, batch.positions.data(), iscore);

  // q = wq_b(q_norm(qr)) and the indexer query wq_b on the same qr.
  for (int64_t t = 0; t < rows; ++t) kernels::rms_norm(qr + t * Rq, a.q_norm.data(), Rq, eps, qr + t * Rq);
  float* q = A.alloc<float>(rows * H * Dh);
  nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_b, qr, rows, q};
  if (csa) {
    qI = A.alloc<float>(rows * Hi * Di);
    jobs[nj++] = {LinearKind::quantized, a.indexer.wq_b, qr, rows, qI};
  }
  linear_many(jobs, nj, A);
  if (csa) indexer_finish_queries(m, rows, batch.positions.data(), qI, iweights);
  finish_q_kv(m, b, batch, q, kv);

  float* o = A.alloc<float>(rows * H * Dh);
  const float scale = float(1.0 / std::sqrt(double(Dh)));
  const kernels::RopeFreqs& rope = m.rope_for(b.kind);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  for (const Segment& seg : batch.segments) {
    LayerState& st = seg.seq->layers[size_t(b.layer)];
    if (compressed)
      run_compressor(m, b, a.compressor, CompressorKind::main, batch, seg, ckv, cscore, st.comp_state, st.comp, A);
    if (csa)
      run_compressor(m, b, a.indexer.compressor, CompressorKind::indexer, batch, seg, ikv, iscore, st.idx_state,
                     st.idx, A);

    // The segment's raw entries as bf16 (lossless: kv is bf16-valued, spec §5.3), so that window
    // rows come from the ring and from the chunk alike.
    ArenaScope seg_scope(A);
    uint16_t* chunk_kv = A.alloc<uint16_t>(seg.n * Dh);
    for (int64_t i = 0; i < seg.n * Dh; ++i) chunk_kv[i] = f32_to_bf16(kv[seg.row0 * Dh + i]);
    const QueryCtx ctx{&m, &b, &st, chunk_kv, seg.start_pos};
    auto query_ptrs = [&](int64_t r) {
      return std::make_pair(qI ? qI + r * Hi * Di : nullptr, iweights ? iweights + r * Hi : nullptr);
    };

    if (seg.n > 1) {
      // Prefill: queries spread over the threads, each with all heads.
      parallel_for_dynamic(true, seg.n, [&](int64_t i, int64_t thread) {
        Arena& ta = s.thread(int(thread));
        ArenaScope qscope(ta);
        const int64_t r = seg.row0 + i, t = seg.start_pos + i;
        const uint16_t** entry_rows = ta.alloc<const uint16_t*>(max_entries(c, b, t));
        int64_t n_window = 0;
        const auto [qi, iw] = query_ptrs(r);
        const int64_t n = gather_entries(ctx, t, qi, iw, false, entry_rows, &n_window, ta);
        float* oh = o + r * H * Dh;
        kernels::attention_rows_bf16(q + r * H * Dh, entry_rows, n_window, n, Dh, scale, a.attn_sink, 0, H, oh);
        float cs[kMaxRopeDim];
        kernels::rope_angles(rope, t, cs);
        for (int64_t h = 0; h < H; ++h) kernels::rope_apply(oh + h * Dh, Dh, rope.rope_dim, cs, true);
      });
    } else {
      // Decode: one query; the indexer splits its entries and the attention its heads over the
      // threads.
      const int64_t r = seg.row0, t = seg.start_pos;
      const uint16_t** entry_rows = A.alloc<const uint16_t*>(max_entries(c, b, t));
      int64_t n_window = 0;
      const auto [qi, iw] = query_ptrs(r);
      const int64_t n = gather_entries(ctx, t, qi, iw, true, entry_rows, &n_window, A);
      float cs[kMaxRopeDim];
      kernels::rope_angles(rope, t, cs);
      float* oh = o + r * H * Dh;
      const float* qh = q + r * H * Dh;
      run_parallel(H * Dh * n >= (int64_t(1) << 16), [&](int64_t id, int64_t nth) {
        const int64_t h0 = H * id / nth, h1 = H * (id + 1) / nth;
        if (h0 < h1) {
          kernels::attention_rows_bf16(qh, entry_rows, n_window, n, Dh, scale, a.attn_sink, h0, h1, oh);
          for (int64_t h = h0; h < h1; ++h) kernels::rope_apply(oh + h * Dh, Dh, rope.rope_dim, cs, true);
        }
      });
    }
    // Ring keeps the last W raw entries at slot p mod W (spec §5.13 step 4).
    const int64_t W = c.sliding_window;
    for (int64_t i = std::max<int64_t>(0, seg.n - W); i < seg.n; ++i) {
      const int64_t p = seg.start_pos + i;
      std::copy(chunk_kv + i * Dh, chunk_kv + (i + 1) * Dh, &st.ring[size_t((p % W) * Dh)]);
    }
  }

  // Grouped output projection (spec §5.8): z_g = bf16(o_g · wo_a[g]ᵀ), all groups in one parallel
  // region, then the FP8 GEMM with wo_b.
  const int64_t G = c.o_groups, Ro = c.o_lora_rank, gw = H * Dh / G;
  float* z = A.alloc<float>(rows * G * Ro);
  float *og = o, *zg = z;
  if (rows > 1) {   // group-major copies: each group's rows contiguous
    og = A.alloc<float>(G * rows * gw);
    zg = A.alloc<float>(G * rows * Ro);
    for (int64_t g = 0; g < G; ++g)
      for (int64_t t = 0; t < rows; ++t)
        std::copy(o + t * H * Dh + g * gw, o + t * H * Dh + (g + 1) * gw, og + (g * rows + t) * gw);
  }
  LinearJob* wo_jobs = A.alloc<LinearJob>(G);
  for (int64_t g = 0; g < G; ++g) {
    const float* xin = rows > 1 ? og + g * rows * gw : o + g * gw;
    float* yout = rows > 1 ? zg + g * rows * Ro : z + g * Ro;
    wo_jobs[g] = {LinearKind::bf16, row_slice(a.wo_a, g * Ro, Ro), xin, rows, yout};
  }
  linear_many(wo_jobs, G, A);
  if (rows > 1)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t t = 0; t < rows; ++t)
        std::copy(zg + (g * rows + t) * Ro, zg + (g * rows + t + 1) * Ro, z + t * G * Ro + g * Ro);
  linear({LinearKind::quantized, a.wo_b, z, rows, out}, A);
}

}  // namespace dsv4::model

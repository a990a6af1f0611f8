#include "model/attention.h"

#include <algorithm>
#include <string>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "model/attention_core.h"
#include "model/attention_output.h"
#include "model/block_probe.h"
#include "model/chunk_undo.h"
#include "model/compressor.h"
#include "model/indexer.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

constexpr int kKvSimBlock = 64;   // FP8 simulation of stored KV, nope dims only (spec §5.3)
constexpr int64_t kMaxRopeDim = 256;
constexpr int kMaxProjections = 7;   // of x: wq_a, wkv, two per compressor, weights_proj

// The per-row products of one step, [rows, ·] each; null where the layer kind has no such part.
struct Projections {
  float* qr = nullptr;                         // [Rq] the low-rank query, shared with the indexer
  float* q = nullptr;                          // [H·Dh]
  float* kv = nullptr;                         // [Dh] the raw entry (key = value)
  float *ckv = nullptr, *cscore = nullptr;     // [c·Dh] main compressor (CSA, HCA; spec §5.5)
  float *ikv = nullptr, *iscore = nullptr;     // [2·Di] indexer compressor (CSA; spec §5.6)
  float *iq = nullptr, *iweights = nullptr;    // [Hi·Di], [Hi] indexer query side (CSA)
};

// Every product of x in one parallel region: wq_a, wkv (spec §5.3), the compressor's wkv and
// wgate (§5.5; the indexer's too, and weights_proj, §5.6); then ape added to the scores.
void project_x(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, Projections& p, Arena& A) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows();
  const AttentionWeights& a = b.attn;
  p.qr = A.alloc<float>(rows * c.q_lora_rank);
  p.kv = A.alloc<float>(rows * c.head_dim);
  LinearJob jobs[kMaxProjections];
  int nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_a, x, rows, p.qr};
  jobs[nj++] = {LinearKind::quantized, a.wkv, x, rows, p.kv};
  // The compressors' f32 products sum in the reference GPU's order (kernels/cpu/matmul.h
  // SumOrder::two_slices).
  if (b.kind != io::LayerKind::swa) {
    const CompressorWeights& cw = a.compressor;
    p.ckv = A.alloc<float>(rows * cw.width);
    p.cscore = A.alloc<float>(rows * cw.width);
    jobs[nj++] = {LinearKind::f32, cw.wkv, x, rows, p.ckv, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::f32, cw.wgate, x, rows, p.cscore, kernels::SumOrder::two_slices};
  }
  if (b.kind == io::LayerKind::csa) {
    const CompressorWeights& ic = a.indexer.compressor;
    p.ikv = A.alloc<float>(rows * ic.width);
    p.iscore = A.alloc<float>(rows * ic.width);
    p.iweights = A.alloc<float>(rows * c.index_n_heads);
    jobs[nj++] = {LinearKind::f32, ic.wkv, x, rows, p.ikv, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::f32, ic.wgate, x, rows, p.iscore, kernels::SumOrder::two_slices};
    jobs[nj++] = {LinearKind::bf16, a.indexer.weights_proj, x, rows, p.iweights};
  }
  linear_many(jobs, nj, A);
  if (b.kind != io::LayerKind::swa) compressor_add_ape(a.compressor, rows, batch.positions.data(), p.cscore);
  if (b.kind == io::LayerKind::csa) compressor_add_ape(a.indexer.compressor, rows, batch.positions.data(), p.iscore);
}

// spec §5.3 for one raw entry after wkv, at the angles cs of its position: RMSNorm, RoPE, FP8
// simulation of the nope dims.
void finish_kv(const Model& m, const BlockWeights& b, const float* cs, float* kv) {
  const io::ModelConfig& c = m.cfg;
  const int64_t Dh = c.head_dim, rope_dim = m.rope_for(b.kind).rope_dim;
  kernels::rms_norm(kv, b.attn.kv_norm.data(), Dh, float(c.rms_norm_eps), kv);
  kernels::rope_apply(kv, Dh, rope_dim, cs, false);
  kernels::act_quant_fp8(kv, Dh - rope_dim, kKvSimBlock);
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
    finish_kv(m, b, cs, kv + t * Dh);
  });
}

// The queries: q = wq_b(q_norm(qr)) and, on the same qr, the indexer's query (spec §5.6), in one
// parallel region; then each finished per row (§5.3, §5.6), and kv with them.
void project_queries(const Model& m, const BlockWeights& b, const Batch& batch, Projections& p, Arena& A) {
  const io::ModelConfig& c = m.cfg;
  const int64_t rows = batch.rows(), Rq = c.q_lora_rank;
  const AttentionWeights& a = b.attn;
  for (int64_t t = 0; t < rows; ++t)
    kernels::rms_norm(p.qr + t * Rq, a.q_norm.data(), Rq, float(c.rms_norm_eps), p.qr + t * Rq);
  p.q = A.alloc<float>(rows * c.num_attention_heads * c.head_dim);
  LinearJob jobs[2];
  int nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_b, p.qr, rows, p.q};
  if (b.kind == io::LayerKind::csa) {
    p.iq = A.alloc<float>(rows * c.index_n_heads * c.index_head_dim);
    jobs[nj++] = {LinearKind::quantized, a.indexer.wq_b, p.qr, rows, p.iq};
  }
  linear_many(jobs, nj, A);
  if (b.kind == io::LayerKind::csa)
    indexer_finish_queries(m, m.rope_for(io::LayerKind::csa), true, rows, batch.positions.data(), p.iq, p.iweights);
  finish_q_kv(m, b, batch, p.q, p.kv);
}

// The per-row quantities of the step, once projected and finished, for a probe watching block b
// (block_probe.h): the compressors' projections (scores with ape), the normed qr, the indexer's
// queries and head weights, q and kv.
void record_projections(BlockProbe& probe, const Model& m, const BlockWeights& b, const Batch& batch,
                        const Projections& p) {
  const io::ModelConfig& c = m.cfg;
  const int64_t* pos = batch.positions.data();
  const int64_t rows = batch.rows();
  if (b.kind != io::LayerKind::swa) {
    probe.record("comp.kvp", pos, rows, b.attn.compressor.width, p.ckv);
    probe.record("comp.score", pos, rows, b.attn.compressor.width, p.cscore);
  }
  if (b.kind == io::LayerKind::csa) {
    probe.record("idx.kvp", pos, rows, b.attn.indexer.compressor.width, p.ikv);
    probe.record("idx.score", pos, rows, b.attn.indexer.compressor.width, p.iscore);
    probe.record("idx.q", pos, rows, c.index_n_heads * c.index_head_dim, p.iq);
    probe.record("idx.weights", pos, rows, c.index_n_heads, p.iweights);
  }
  probe.record("attn.qr", pos, rows, c.q_lora_rank, p.qr);
  probe.record("attn.q", pos, rows, c.num_attention_heads * c.head_dim, p.q);
  probe.record("attn.kv", pos, rows, c.head_dim, p.kv);
}

// Runs a compressor of block b over the rows of one segment in position order (spec §5.5, §5.13
// step 2). `undo`, if set, logs each pushed row (model/chunk_undo.h). A probe watching the block gets every entry closed inside its range as `<name>.pooled`
// (f32, before the bf16 rounding) and `<name>.entry` (as stored), keyed by the closing position.
void run_compressor(const Model& m, const BlockWeights& b, const CompressorWeights& w, CompressorKind kind,
                    const Batch& batch, const Segment& seg, const float* kvp, const float* score,
                    CompressorState& st, std::vector<uint16_t>& entries, ChunkUndo::Saved* undo, Arena& a,
                    BlockProbe* probe, const char* name) {
  const kernels::RopeFreqs& rope = m.rope_for(b.kind);
  for (int64_t i = 0; i < seg.n; ++i) {
    const int64_t r = seg.row0 + i, pos = batch.positions[size_t(r)];
    if (undo) undo_log_push(*undo, i, w.width, kvp + r * w.width, score + r * w.width);
    if (!probe || !probe->watches(b.layer, pos)) {
      compressor_push(w, kind, rope, float(m.cfg.rms_norm_eps), st, pos, kvp + r * w.width, score + r * w.width,
                      entries, a);
      continue;
    }
    ArenaScope scope(a);
    float* pooled = a.alloc<float>(2 * w.dim);
    if (!compressor_push(w, kind, rope, float(m.cfg.rms_norm_eps), st, pos, kvp + r * w.width,
                         score + r * w.width, entries, a, pooled))
      continue;
    float* entry = pooled + w.dim;
    for (int64_t k = 0; k < w.dim; ++k) entry[k] = bf16_to_f32(entries[entries.size() - size_t(w.dim) + size_t(k)]);
    probe->record_row(std::string(name) + ".pooled", pos, w.dim, pooled);
    probe->record_row(std::string(name) + ".entry", pos, w.dim, entry);
  }
}

// The segment's rows through the layer's compressors: the main one (CSA, HCA) and the indexer's
// (CSA), appending the entries their windows complete (spec §5.5, §5.13 step 2). A chunk run
// undoable (model/chunk_undo.h) logs the pushed rows.
void compress_segment(const Model& m, const BlockWeights& b, const Batch& batch, const Segment& seg,
                      const Projections& p, LayerState& st, Arena& a, BlockProbe* probe) {
  ChunkUndo& u = seg.seq->undo;
  const bool logged = u.start == seg.start_pos && u.n == seg.n && size_t(b.layer) < u.layers.size();   // main layers
  ChunkUndo::Layer* undo = logged ? &u.layers[size_t(b.layer)] : nullptr;
  if (b.kind != io::LayerKind::swa)
    run_compressor(m, b, b.attn.compressor, CompressorKind::main, batch, seg, p.ckv, p.cscore, st.comp_state, st.comp,
                   undo ? &undo->comp : nullptr, a, probe, "comp");
  if (b.kind == io::LayerKind::csa)
    run_compressor(m, b, b.attn.indexer.compressor, CompressorKind::indexer, batch, seg, p.ikv, p.iscore,
                   st.idx_state, st.idx, undo ? &undo->idx : nullptr, a, probe, "idx");
}

}  // namespace

void attention_forward(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out,
                       Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  Arena& A = s.main;
  ArenaScope scope(A);
  BlockProbe* probe = s.probe && s.probe->watches(b.layer) ? s.probe : nullptr;
  Projections p;
  project_x(m, b, batch, x, p, A);
  project_queries(m, b, batch, p, A);
  if (probe) record_projections(*probe, m, b, batch, p);

  const AttentionQueries queries{p.q, p.iq, p.iweights};
  float* o = A.alloc<float>(batch.rows() * c.num_attention_heads * c.head_dim);
  for (const Segment& seg : batch.segments) {
    LayerState& st = seg.seq->layers[size_t(b.layer)];
    compress_segment(m, b, batch, seg, p, st, A, probe);
    ArenaScope seg_scope(A);
    const uint16_t* chunk_kv = chunk_entries(p.kv, seg, c.head_dim, A);
    attend_segment(m, b, seg, st, chunk_kv, queries, o, s);
    update_ring(c, seg, chunk_kv, st);
  }
  if (probe)   // after the de-rotation
    probe->record("attn.o", batch.positions.data(), batch.rows(), c.num_attention_heads * c.head_dim, o);
  grouped_output_projection(m, b.attn, o, batch.rows(), out, A);
}

QueryEntries project_swa_rows(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, Arena& a) {
  DSV4_CHECK(b.kind == io::LayerKind::swa);
  Projections p;
  project_x(m, b, batch, x, p, a);
  project_queries(m, b, batch, p, a);
  return {p.q, p.kv};
}

void project_raw_entries(const Model& m, const BlockWeights& b, const float* x, const int64_t* positions, int64_t rows,
                         float* kv, Arena& a) {
  const kernels::RopeFreqs& rope = m.rope_for(b.kind);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  linear({LinearKind::quantized, b.attn.wkv, x, rows, kv}, a);
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float cs[kMaxRopeDim];
    kernels::rope_angles(rope, positions[t], cs);
    finish_kv(m, b, cs, kv + t * m.cfg.head_dim);
  });
}

}  // namespace dsv4::model

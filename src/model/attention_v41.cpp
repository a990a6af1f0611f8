#include "model/attention_v41.h"

#include <algorithm>
#include <limits>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/fp4_pack.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "model/attention_core.h"
#include "model/attention_output.h"
#include "model/chunk_undo.h"
#include "model/compressor.h"
#include "model/indexer.h"
#include "model/linear.h"

namespace dsv4::model {

namespace {

constexpr int64_t kMaxRopeDim = 256;

// The per-row products of one step, [rows, ·] each; null where the layer's role has none.
struct Projections {
  float* qr = nullptr;                    // [Rq]
  float* q = nullptr;                     // [H·Dh]
  float* kv = nullptr;                    // [Dh] the window entry
  float *ckv = nullptr, *cscore = nullptr;  // [Dh] KV source: compressor projections (§5.6)
  float *iq = nullptr, *iweights = nullptr; // [Hi·Di], [Hi] index source (§5.8.2)
};

// v4.1 §5.5: the window entry from its product kv = x·wkvᵀ (in place): RMSNorm, RoPE at the
// angles cs, then act_quant over all of the 512 dims, rope dims included.
void finish_window_entry(const Model& m, const BlockWeights& b, const kernels::RopeFreqs& rope, const float* cs,
                         float* kv) {
  const io::ModelConfig& c = m.cfg;
  const int64_t Dh = c.head_dim;
  kernels::rms_norm(kv, b.attn.kv_norm.data(), Dh, float(c.rms_norm_eps), kv);
  kernels::rope_apply(kv, Dh, rope.rope_dim, cs, false);
  kernels::act_quant_fp8(kv, Dh, int(c.v41.fp8_block));
}

// v4.1 §5.4-§5.6, §5.8.2: every product of x, then of qr, each finished per row.
void project(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, Projections& p, Arena& A) {
  const io::ModelConfig& c = m.cfg;
  const io::V41Layer& r = b.v41;
  const AttentionWeights& a = b.attn;
  const int64_t rows = batch.rows(), H = c.num_attention_heads, Dh = c.head_dim, Rq = c.q_lora_rank;
  const float eps = float(c.rms_norm_eps);
  p.qr = A.alloc<float>(rows * Rq);
  p.kv = A.alloc<float>(rows * Dh);
  LinearJob jobs[5];
  int nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_a, x, rows, p.qr};
  jobs[nj++] = {LinearKind::quantized, a.wkv, x, rows, p.kv};
  if (r.kv_source) {
    const CompressorWeights& cw = a.compressor;
    p.ckv = A.alloc<float>(rows * cw.width);
    if (r.ratio == 2) {   // f32 parameters, f32 products (v4.1 §3.7, §5.6), in the GPU's sum order as in V4
      p.cscore = A.alloc<float>(rows * cw.width);
      jobs[nj++] = {LinearKind::f32, cw.wkv, x, rows, p.ckv, kernels::SumOrder::two_slices};
      jobs[nj++] = {LinearKind::f32, cw.wgate, x, rows, p.cscore, kernels::SumOrder::two_slices};
    } else {              // ratio 1: a bf16 linear (v4.1 §5.6)
      jobs[nj++] = {LinearKind::bf16, cw.wkv, x, rows, p.ckv};
    }
  }
  if (r.index_source) {
    p.iweights = A.alloc<float>(rows * c.index_n_heads);
    jobs[nj++] = {LinearKind::bf16, a.indexer.weights_proj, x, rows, p.iweights};
  }
  linear_many(jobs, nj, A);

  for (int64_t t = 0; t < rows; ++t) kernels::rms_norm(p.qr + t * Rq, a.q_norm.data(), Rq, eps, p.qr + t * Rq);
  p.q = A.alloc<float>(rows * H * Dh);
  nj = 0;
  jobs[nj++] = {LinearKind::quantized, a.wq_b, p.qr, rows, p.q};
  if (r.index_source) {
    p.iq = A.alloc<float>(rows * c.index_n_heads * c.index_head_dim);
    jobs[nj++] = {LinearKind::quantized, a.indexer.wq_b, p.qr, rows, p.iq};
  }
  linear_many(jobs, nj, A);

  const kernels::RopeFreqs& rope = m.rope_for(b);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  // v4.1 §5.8.2, §4.6: RoPE then FP4 (E8M0, group 32), no Hadamard.
  if (r.index_source) indexer_finish_queries(m, rope, false, rows, batch.positions.data(), p.iq, p.iweights);
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float cs[kMaxRopeDim];
    kernels::rope_angles(rope, batch.positions[size_t(t)], cs);
    // v4.1 §4.1, §5.4: no per-head q norm, RoPE only.
    for (int64_t h = 0; h < H; ++h) kernels::rope_apply(p.q + (t * H + h) * Dh, Dh, rope.rope_dim, cs, false);
    finish_window_entry(m, b, rope, cs, p.kv + t * Dh);
  });
}

// A KV source's compressor over the rows of one segment in position order (v4.1 §5.6, §5.8.1,
// §9 step 2): each emitted RoPE-free latent c_j gives the index key idxk[j] and then, rotated at
// position j·m and packed as FP4, the compressed entry comp[j], both appended to the state.
void compress_segment(const Model& m, const BlockWeights& b, const Batch& batch, const Segment& seg,
                      const Projections& p, LayerState& st, Arena& A) {
  const io::ModelConfig& c = m.cfg;
  const CompressorWeights& cw = b.attn.compressor;
  const IndexerWeights& ix = b.attn.indexer;
  const int64_t Dh = cw.dim, Di = c.index_head_dim, ratio = cw.ratio;
  const float eps = float(c.rms_norm_eps);
  // A chunk run undoable logs the pending-pair rows it pushes (model/chunk_undo.h, v4.1 §9).
  ChunkUndo& u = seg.seq->undo;
  ChunkUndo::Saved* log = u.start == seg.start_pos && u.n == seg.n && size_t(b.layer) < u.layers.size()
                              ? &u.layers[size_t(b.layer)].comp
                              : nullptr;
  ArenaScope scope(A);
  float* latent = A.alloc<float>(seg.n * Dh);
  int64_t* entry = A.alloc<int64_t>(seg.n);
  int64_t ne = 0;
  for (int64_t i = 0; i < seg.n; ++i) {
    const int64_t r = seg.row0 + i, pos = seg.start_pos + i;
    float* out = latent + ne * Dh;
    if (ratio == 1) {
      std::copy(p.ckv + r * Dh, p.ckv + (r + 1) * Dh, out);
    } else {
      if (log) undo_log_push(*log, i, cw.width, p.ckv + r * Dh, p.cscore + r * Dh);
      if (!compressor_pool(cw, st.comp_state, pos, p.ckv + r * Dh, p.cscore + r * Dh, out, A)) continue;
      for (int64_t k = 0; k < Dh; ++k) out[k] = round_bf16(out[k]);
    }
    kernels::rms_norm(out, cw.norm.data(), Dh, eps, out);
    entry[ne++] = pos / ratio;
  }
  if (ne == 0) return;
  float* keys = A.alloc<float>(ne * Di);
  linear({LinearKind::bf16, ix.wk, latent, ne, keys}, A);
  const kernels::RopeFreqs& rope = m.rope_for(b);
  float cs[kMaxRopeDim];
  st.comp_fp4.resize(st.comp_fp4.size() + size_t(ne * st.comp_bytes));
  st.idx_fp4.resize(st.idx_fp4.size() + size_t(ne * st.idx_bytes));
  for (int64_t e = 0; e < ne; ++e) {
    const int64_t j = entry[e];
    DSV4_CHECK(int64_t(st.comp_fp4.size()) == (j + ne - e) * st.comp_bytes);
    kernels::rope_angles(rope, j * ratio, cs);
    float* k = keys + e * Di;
    kernels::rms_norm(k, ix.k_norm.data(), Di, eps, k);
    kernels::rope_apply(k, Di, rope.rope_dim, cs, false);
    uint8_t* ik = st.idx_fp4.data() + j * st.idx_bytes;
    kernels::fp4_e8m0_pack(k, Di, ik, ik + Di / 2);
    float* v = latent + e * Dh;
    kernels::rope_apply(v, Dh, rope.rope_dim, cs, false);
    uint8_t* ck = st.comp_fp4.data() + j * st.comp_bytes;
    kernels::fp4_e4m3_pack(v, Dh, ck, ck + Dh / 2);
  }
}

constexpr int64_t kMaxEntryDim = 1024;

// Entry j of a source's packed cache (latents, or index keys) as a bf16 row (exact: the packed
// values are bf16).
void unpack_entry(const LayerState& src, bool keys, int64_t j, uint16_t* out) {
  const int64_t dim = keys ? src.index_dim : src.entry_dim, bytes = keys ? src.idx_bytes : src.comp_bytes;
  DSV4_CHECK(dim <= kMaxEntryDim);
  float tmp[kMaxEntryDim];
  const uint8_t* at = (keys ? src.idx_fp4.data() : src.comp_fp4.data()) + j * bytes;
  if (keys) kernels::fp4_e8m0_unpack(at, at + dim / 2, dim, tmp);
  else kernels::fp4_e4m3_unpack(at, at + dim / 2, dim, tmp);
  for (int64_t k = 0; k < dim; ++k) out[k] = f32_to_bf16(tmp[k]);
}

// v4.1 §5.8.2-§5.8.4 for the queries of one segment at an index source: scores against the
// group's keys, candidate blocks (candidate source) or the candidate mask (consumers), top-k
// sorted ascending into sel.
void select_segment(const Model& m, const BlockWeights& b, const Segment& seg, const LayerState& src,
                    const Projections& p, V41Selection& sel, Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const io::V41Config& v = c.v41;
  const int64_t ratio = b.v41.ratio, Hi = c.index_n_heads, Di = c.index_head_dim, K = c.index_topk;
  const int64_t n_last = (seg.start_pos + seg.n) / ratio;   // entries visible to the last query
  DSV4_CHECK(int64_t(src.idx_fp4.size()) >= n_last * src.idx_bytes);
  Arena& A = s.main;
  ArenaScope scope(A);
  uint16_t* keys = A.alloc<uint16_t>(n_last * Di);
  parallel_for_static(n_last * Di >= (int64_t(1) << 16), n_last,
                      [&](int64_t j, int64_t) { unpack_entry(src, true, j, keys + j * Di); });
  const bool decode = seg.n == 1;
  parallel_for_dynamic(!decode, seg.n, [&](int64_t i, int64_t thread) {
    Arena& ta = s.thread(int(thread));
    ArenaScope qscope(ta);
    const int64_t r = seg.row0 + i, t = seg.start_pos + i, nv = (t + 1) / ratio;
    float* score = ta.alloc<float>(nv);
    indexer_score_row(m, p.iq + r * Hi * Di, p.iweights + r * Hi, keys, nv, decode, score);
    const uint8_t* allowed = nullptr;
    if (b.v41.candidate_source) {
      sel.cand_n[r] = int32_t(candidate_blocks(score, nv, v.candidate_block_size, v.candidate_topk_blocks,
                                               sel.cand + r * v.candidate_topk_blocks, ta));
    } else if (b.v41.candidate_consumer && sel.has_candidates && sel.cand_n[r] >= 0) {
      uint8_t* mask = ta.alloc<uint8_t>(nv);
      std::fill(mask, mask + nv, uint8_t(0));
      for (int32_t k = 0; k < sel.cand_n[r]; ++k) {
        const int64_t j0 = int64_t(sel.cand[r * v.candidate_topk_blocks + k]) * v.candidate_block_size;
        for (int64_t j = j0; j < std::min(nv, j0 + v.candidate_block_size); ++j) mask[j] = 1;
      }
      allowed = mask;
    }
    int32_t* out = sel.topk + r * K;
    const int64_t k = topk_entries(score, nv, K, allowed, out, ta);
    std::sort(out, out + k);   // v4.1 §5.8.4: the selected positions are used in ascending order
    sel.topk_n[r] = int32_t(k);
  });
  if (b.v41.candidate_source) sel.has_candidates = true;
  sel.index_layer = b.layer;
}

// v4.1 §5.9-§5.10 for the queries of one segment: window (ring and chunk), then the group's
// selected compressed entries; sink attention and de-rotation into o.
void attend_segment_v41(const Model& m, const BlockWeights& b, const Segment& seg, const LayerState& st,
                        const LayerState* src, const uint16_t* chunk_kv, const Projections& p,
                        const V41Selection& sel, float* o, Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const int64_t W = c.sliding_window, Dh = c.head_dim, H = c.num_attention_heads, K = c.index_topk;
  parallel_for_dynamic(seg.n > 1, seg.n, [&](int64_t i, int64_t thread) {
    Arena& ta = s.thread(int(thread));
    ArenaScope qscope(ta);
    const int64_t r = seg.row0 + i, t = seg.start_pos + i;
    const int64_t nk = src ? sel.topk_n[r] : 0;
    const uint16_t** rows = ta.alloc<const uint16_t*>(W + nk);
    int64_t n = 0;
    for (int64_t q = std::max<int64_t>(0, t - W + 1); q <= t; ++q)
      rows[n++] = q >= seg.start_pos ? chunk_kv + (q - seg.start_pos) * Dh : &st.ring[size_t((q % W) * Dh)];
    const int64_t n_window = n;
    if (nk > 0) {
      uint16_t* entries = ta.alloc<uint16_t>(nk * Dh);
      parallel_for_static(seg.n == 1 && nk * Dh >= (int64_t(1) << 16), nk,
                          [&](int64_t k, int64_t) { unpack_entry(*src, false, sel.topk[r * K + k], entries + k * Dh); });
      for (int64_t k = 0; k < nk; ++k) rows[n++] = entries + k * Dh;
    }
    if (seg.n > 1) attend_query(m, b, p.q + r * H * Dh, rows, n_window, n, t, o + r * H * Dh);
    else attend_query_split(m, b, p.q + r * H * Dh, rows, n_window, n, t, o + r * H * Dh);
  });
}

}  // namespace

QueryEntries project_window_rows_v41(const Model& m, const BlockWeights& b, const Batch& batch, const float* x,
                                    Arena& a) {
  DSV4_CHECK(b.v41.ratio == 0 && !b.v41.kv_source && !b.v41.index_source);
  Projections p;
  project(m, b, batch, x, p, a);
  return {p.q, p.kv};
}

void project_window_entries_v41(const Model& m, const BlockWeights& b, const float* x, const int64_t* positions,
                                int64_t rows, float* kv, Arena& a) {
  const kernels::RopeFreqs& rope = m.rope_for(b);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  linear({LinearKind::quantized, b.attn.wkv, x, rows, kv}, a);
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    float cs[kMaxRopeDim];
    kernels::rope_angles(rope, positions[t], cs);
    finish_window_entry(m, b, rope, cs, kv + t * m.cfg.head_dim);
  });
}

V41Selection make_v41_selection(const io::ModelConfig& c, int64_t rows, Arena& a) {
  V41Selection sel;
  sel.topk = a.alloc<int32_t>(rows * c.index_topk);
  sel.topk_n = a.alloc<int32_t>(rows);
  sel.cand = a.alloc<int32_t>(rows * std::max<int64_t>(1, c.v41.candidate_topk_blocks));
  sel.cand_n = a.alloc<int32_t>(rows);
  return sel;
}

int64_t candidate_blocks(const float* score, int64_t n_visible, int64_t block, int64_t keep, int32_t* kept, Arena& a) {
  const int64_t nb = (n_visible + block - 1) / block;
  if (nb <= keep) return -1;
  ArenaScope scope(a);
  float* best = a.alloc<float>(nb);
  for (int64_t k = 0; k < nb; ++k) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = k * block; j < std::min(n_visible, (k + 1) * block); ++j) mx = std::max(mx, score[j]);
    best[k] = mx;
  }
  // v4.1 §5.8.3: the block holding the newest visible entry is pinned (+inf); blocks at -inf
  // (none: every visible score is finite) would be dropped.
  best[(n_visible - 1) / block] = std::numeric_limits<float>::infinity();
  return topk_entries(best, nb, keep, nullptr, kept, a);
}

void attention_v41(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out,
                   V41Selection& sel, Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const io::V41Layer& r = b.v41;
  Arena& A = s.main;
  ArenaScope scope(A);
  Projections p;
  project(m, b, batch, x, p, A);
  float* o = A.alloc<float>(batch.rows() * c.num_attention_heads * c.head_dim);
  for (const Segment& seg : batch.segments) {
    LayerState& st = seg.seq->layers[size_t(b.layer)];
    const LayerState* src = nullptr;
    if (r.ratio > 0) {   // v4.1 §5.7: sources run first; readers see this chunk's entries too
      if (r.kv_source) compress_segment(m, b, batch, seg, p, st, A);
      src = &seg.seq->layers[size_t(r.kv_group)];
      if (r.index_source) select_segment(m, b, seg, *src, p, sel, s);
      DSV4_CHECK(sel.index_layer == r.index_group);   // v4.1 §5.8.5: readers reuse their group's lists
    }
    ArenaScope seg_scope(A);
    const uint16_t* chunk_kv = chunk_entries(p.kv, seg, c.head_dim, A);
    attend_segment_v41(m, b, seg, st, src, chunk_kv, p, sel, o, s);
    update_ring(c, seg, chunk_kv, st);
  }
  grouped_output_projection(m, b.attn, o, batch.rows(), out, A);
}

}  // namespace dsv4::model

#include "model/attention_core.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/sparse_attn.h"
#include "model/block_probe.h"
#include "model/indexer.h"

namespace dsv4::model {

namespace {

constexpr int64_t kMaxRopeDim = 256;
// Below this many multiply-adds (heads x dims x entries) one thread runs a decode query's
// attention faster than a fork/join of the pool.
constexpr int64_t kMinParallelDecode = int64_t(1) << 16;

// Where the entries of one segment's queries live: the state's ring and compressed entries, and
// the chunk's own raw entries (positions P.. of the segment).
struct EntrySource {
  const Model* m;
  const BlockWeights* b;
  const LayerState* st;
  const uint16_t* chunk_kv;   // bf16 [seg.n, Dh]
  int64_t P;                  // first position of the segment
  BlockProbe* probe;          // records the CSA selection (attn.selected) when set
};

// Compressed entries visible to query position t: n_c(t) = floor((t+1)/m) (spec §5.4).
int64_t visible_entries(const CompressorWeights& w, int64_t t) { return (t + 1) / w.ratio; }

// Room for the entry list of query position t: the window plus the compressed entries (spec §5.9).
int64_t max_entries(const io::ModelConfig& c, const BlockWeights& b, int64_t t) {
  switch (b.kind) {
    case io::LayerKind::swa: return c.sliding_window;
    case io::LayerKind::hca: return c.sliding_window + visible_entries(b.attn.compressor, t);
    case io::LayerKind::csa: return c.sliding_window + std::min(c.index_topk, visible_entries(b.attn.compressor, t));
  }
  return c.sliding_window;
}

// The attended entry list of query position t (spec §5.4): the raw window max(0, t-W+1)..t, then
// the visible compressed entries (HCA: all, in order; CSA: the indexer's top-k for the query's
// iq and iw). Returns the count; n_window gets the window part. `rows` needs room for
// max_entries(..., t).
int64_t gather_entries(const EntrySource& src, int64_t t, const float* iq, const float* iw, bool parallel,
                       const uint16_t** rows, int64_t* n_window, Arena& a) {
  const io::ModelConfig& c = src.m->cfg;
  const int64_t W = c.sliding_window, Dh = c.head_dim;
  const CompressorWeights& cw = src.b->attn.compressor;
  const int64_t w0 = std::max<int64_t>(0, t - W + 1);
  int64_t n = 0;
  for (int64_t p = w0; p <= t; ++p)
    rows[n++] = p >= src.P ? src.chunk_kv + (p - src.P) * Dh : &src.st->ring[size_t((p % W) * Dh)];
  *n_window = n;
  switch (src.b->kind) {
    case io::LayerKind::swa:
      break;
    case io::LayerKind::hca:
      for (int64_t j = 0; j < visible_entries(cw, t); ++j) rows[n++] = &src.st->comp[size_t(j * Dh)];
      break;
    case io::LayerKind::csa: {
      ArenaScope scope(a);
      const int64_t visible = visible_entries(cw, t);
      int32_t* sel = a.alloc<int32_t>(std::min(c.index_topk, visible));
      const int64_t k = indexer_select(*src.m, iq, iw, src.st->idx.data(), visible, parallel, sel, a);
      for (int64_t i = 0; i < k; ++i) rows[n++] = &src.st->comp[size_t(int64_t(sel[i]) * Dh)];
      if (src.probe && src.probe->watches(src.b->layer, t)) {   // selected entries in top-k order, -1 padded
        float* row = a.alloc<float>(c.index_topk);
        for (int64_t i = 0; i < c.index_topk; ++i) row[i] = i < k ? float(sel[i]) : -1.0f;
        src.probe->record_row("attn.selected", t, c.index_topk, row);
      }
      break;
    }
  }
  return n;
}

// The query of batch row r: its indexer query and head weights (CSA; null otherwise).
std::pair<const float*, const float*> index_query(const io::ModelConfig& c, const AttentionQueries& qs, int64_t r) {
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim;
  return {qs.index_q ? qs.index_q + r * Hi * Di : nullptr, qs.index_weights ? qs.index_weights + r * Hi : nullptr};
}

// Heads [h0, h1) of query row oh ([H, Dh]) brought back from the keys' rotation to the query
// position's (spec §5.7: RoPE inverse at t on the rope dims).
void derotate_heads(const kernels::RopeFreqs& rope, const float* cs, int64_t Dh, int64_t h0, int64_t h1, float* oh) {
  for (int64_t h = h0; h < h1; ++h) kernels::rope_apply(oh + h * Dh, Dh, rope.rope_dim, cs, true);
}

// Prefill: the queries spread over the threads, each with all heads.
void attend_prefill(const EntrySource& src, const Segment& seg, const AttentionQueries& qs, float* o, Scratch& s) {
  const io::ModelConfig& c = src.m->cfg;
  const int64_t H = c.num_attention_heads, Dh = c.head_dim;
  parallel_for_dynamic(true, seg.n, [&](int64_t i, int64_t thread) {
    Arena& ta = s.thread(int(thread));
    ArenaScope qscope(ta);
    const int64_t r = seg.row0 + i, t = seg.start_pos + i;
    const uint16_t** entry_rows = ta.alloc<const uint16_t*>(max_entries(c, *src.b, t));
    int64_t n_window = 0;
    const auto [iq, iw] = index_query(c, qs, r);
    const int64_t n = gather_entries(src, t, iq, iw, false, entry_rows, &n_window, ta);
    attend_query(*src.m, *src.b, qs.q + r * H * Dh, entry_rows, n_window, n, t, o + r * H * Dh);
  });
}

// Decode: one query; the indexer splits its entries and the attention its heads over the threads.
void attend_decode(const EntrySource& src, const Segment& seg, const AttentionQueries& qs, float* o, Arena& a) {
  const io::ModelConfig& c = src.m->cfg;
  const int64_t H = c.num_attention_heads, Dh = c.head_dim;
  ArenaScope scope(a);
  const int64_t r = seg.row0, t = seg.start_pos;
  const uint16_t** entry_rows = a.alloc<const uint16_t*>(max_entries(c, *src.b, t));
  int64_t n_window = 0;
  const auto [iq, iw] = index_query(c, qs, r);
  const int64_t n = gather_entries(src, t, iq, iw, true, entry_rows, &n_window, a);
  attend_query_split(*src.m, *src.b, qs.q + r * H * Dh, entry_rows, n_window, n, t, o + r * H * Dh);
}

}  // namespace

void attend_query(const Model& m, const BlockWeights& b, const float* q, const uint16_t* const* rows, int64_t n_window,
                  int64_t n, int64_t t, float* o) {
  const int64_t H = m.cfg.num_attention_heads, Dh = m.cfg.head_dim;
  const float scale = float(1.0 / std::sqrt(double(Dh)));
  const kernels::RopeFreqs& rope = m.rope_for(b);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  kernels::attention_rows_bf16(q, rows, n_window, n, Dh, scale, b.attn.attn_sink, 0, H, o);
  float cs[kMaxRopeDim];
  kernels::rope_angles(rope, t, cs);
  derotate_heads(rope, cs, Dh, 0, H, o);
}

const uint16_t* chunk_entries(const float* kv, const Segment& seg, int64_t Dh, Arena& a) {
  uint16_t* chunk_kv = a.alloc<uint16_t>(seg.n * Dh);
  for (int64_t i = 0; i < seg.n * Dh; ++i) chunk_kv[i] = f32_to_bf16(kv[seg.row0 * Dh + i]);
  return chunk_kv;
}

void update_ring(const io::ModelConfig& c, const Segment& seg, const uint16_t* chunk_kv, LayerState& st) {
  const int64_t W = c.sliding_window, Dh = c.head_dim;
  for (int64_t i = std::max<int64_t>(0, seg.n - W); i < seg.n; ++i) {
    const int64_t p = seg.start_pos + i;
    std::copy(chunk_kv + i * Dh, chunk_kv + (i + 1) * Dh, &st.ring[size_t((p % W) * Dh)]);
  }
}

void attend_query_split(const Model& m, const BlockWeights& b, const float* q, const uint16_t* const* rows,
                        int64_t n_window, int64_t n, int64_t t, float* o) {
  const int64_t H = m.cfg.num_attention_heads, Dh = m.cfg.head_dim;
  const float scale = float(1.0 / std::sqrt(double(Dh)));
  const kernels::RopeFreqs& rope = m.rope_for(b);
  DSV4_CHECK(rope.rope_dim <= kMaxRopeDim);
  float cs[kMaxRopeDim];
  kernels::rope_angles(rope, t, cs);
  run_parallel(H * Dh * n >= kMinParallelDecode, [&](int64_t id, int64_t nth) {
    const int64_t h0 = H * id / nth, h1 = H * (id + 1) / nth;
    if (h0 < h1) {
      kernels::attention_rows_bf16(q, rows, n_window, n, Dh, scale, b.attn.attn_sink, h0, h1, o);
      derotate_heads(rope, cs, Dh, h0, h1, o);
    }
  });
}

void attend_segment(const Model& m, const BlockWeights& b, const Segment& seg, const LayerState& st,
                    const uint16_t* chunk_kv, const AttentionQueries& queries, float* o, Scratch& s) {
  DSV4_CHECK(m.rope_for(b.kind).rope_dim <= kMaxRopeDim);
  BlockProbe* probe = s.probe && s.probe->watches(b.layer) ? s.probe : nullptr;
  const EntrySource src{&m, &b, &st, chunk_kv, seg.start_pos, probe};
  if (seg.n > 1) attend_prefill(src, seg, queries, o, s);
  else attend_decode(src, seg, queries, o, s.main);
}

}  // namespace dsv4::model

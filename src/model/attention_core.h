// The attention of one segment's queries over what they see (spec §5.4, §5.7): each query's entry
// list (its raw window, then the visible compressed entries: all of them for HCA, the indexer's
// top-k for CSA), the sparse attention with sink over it, and the de-rotation of the output.
#pragma once

#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"
#include "model/state.h"

namespace dsv4::model {

// The query side of every row of a step: q [rows, H·Dh] after §5.3; for CSA also the indexer's
// queries [rows, Hi·Di] and head weights [rows, Hi] after §5.6 (null otherwise).
struct AttentionQueries {
  const float* q = nullptr;
  const float* index_q = nullptr;
  const float* index_weights = nullptr;
};

// o [rows, H·Dh]: writes the rows of segment `seg` of block b. `st` holds the segment's state
// before this chunk's raw entries enter the ring, with the chunk's compressed entries already
// appended (§5.13 steps 2-3); chunk_kv [seg.n, Dh] bf16 holds the chunk's raw entries. Prefill
// (seg.n > 1) spreads the queries over the threads; decode splits the one query's indexer
// entries and heads. Temporaries come from s; a probe in s watching block b records the CSA
// selection (block_probe.h).
void attend_segment(const Model& m, const BlockWeights& b, const Segment& seg, const LayerState& st,
                    const uint16_t* chunk_kv, const AttentionQueries& queries, float* o, Scratch& s);

// One query over an explicit entry list, all heads on the calling thread (spec §5.7): o [H, Dh] =
// the sink attention of q [H, Dh] over rows[0..n) (the first n_window the raw window; the rest
// start a new block of the online softmax), de-rotated to the query position t. Prefill runs each
// of its queries so; the DSpark stages run theirs over their own entry bank (addendum §A4.7).
// REQUIRES 1 <= n_window <= n.
void attend_query(const Model& m, const BlockWeights& b, const float* q, const uint16_t* const* rows, int64_t n_window,
                  int64_t n, int64_t t, float* o);

// attend_query with the heads split over the threads (one decode query), bit for bit the same.
void attend_query_split(const Model& m, const BlockWeights& b, const float* q, const uint16_t* const* rows,
                        int64_t n_window, int64_t n, int64_t t, float* o);

// The segment's raw entries kv [rows of the batch, Dh] as bf16 [seg.n, Dh] (lossless: they are
// bf16-valued, spec §5.3, v4.1 §5.5), so that window rows come from the ring and from the chunk
// alike. From `a`.
const uint16_t* chunk_entries(const float* kv, const Segment& seg, int64_t Dh, Arena& a);

// The ring keeps the last W raw entries at slot p mod W (spec §5.13 step 4, v4.1 §9 step 4).
void update_ring(const io::ModelConfig& c, const Segment& seg, const uint16_t* chunk_kv, LayerState& st);

}  // namespace dsv4::model

// The attention sub-layer of a DeepSeek-V4.1 block (v4.1 §5.4-§5.10, §5.14) with the chunk
// semantics of v4.1 §9: window KV in every layer; compressed latents written by the KV source
// layers and read by their whole group (§5.7); the two-level indexer (§5.8), whose top-k lists
// and candidate blocks pass from the layer that computes them to the layers that use them within
// one forward (V41Selection).
#pragma once

#include <cstdint>

#include "model/attention.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Per row of a step (v4.1 §8.3 "transient"): the top-k list of the current index group and the
// candidate blocks of the candidate source.
struct V41Selection {
  int64_t index_layer = -1;    // the index source whose lists `topk` holds
  int32_t* topk = nullptr;     // [rows, index_topk]: selected entries, ascending
  int32_t* topk_n = nullptr;   // [rows]
  bool has_candidates = false;
  int32_t* cand = nullptr;     // [rows, candidate_topk_blocks]: kept blocks, any order
  int32_t* cand_n = nullptr;   // [rows]; -1: every visible block is kept (no filtering)
};

// The query side and window entries of a window-only block's rows as attention_v41 computes them
// (v4.1 §5.4-§5.5: no per-head q norm; act_quant block 32 over all 512 dims), without touching
// any state: q [rows, H·Dh] after RoPE, kv [rows, Dh], each row at batch.positions, both from
// `a`. The DSpark stages attend with them (v4.1 §7.4). REQUIRES: b has ratio 0.
QueryEntries project_window_rows_v41(const Model& m, const BlockWeights& b, const Batch& batch, const float* x,
                                    Arena& a);

// Window entries only (v4.1 §5.5): kv [rows, Dh] = act_quant32(RoPE(RMSNorm(wkv(x), kv_norm)))
// at positions[t], for x [rows, D]. The V4.1 DSpark rings hold such entries of main_x (v4.1
// §7.4). Temporaries come from `a`.
void project_window_entries_v41(const Model& m, const BlockWeights& b, const float* x, const int64_t* positions,
                                int64_t rows, float* kv, Arena& a);

// Room for a step of `rows` rows, from `a` (which must outlive the step's blocks).
V41Selection make_v41_selection(const io::ModelConfig& c, int64_t rows, Arena& a);

// x: [rows, D] attn-normed input; out: [rows, D]. Reads and extends the segments' state of block
// b (its ring; a KV source's packed entries and pending pair). Temporaries come from s.
void attention_v41(const Model& m, const BlockWeights& b, const Batch& batch, const float* x, float* out,
                   V41Selection& sel, Scratch& s);

// v4.1 §5.8.3 for one query: the blocks of `block` entries kept from its score row
// score[0..n_visible) (the newest visible block pinned, then the top `keep` by block maximum,
// ties to the lower block). Writes them to `kept` and returns their count, or -1 when every block
// is kept (at most `keep` blocks are visible). Temporaries come from `a`.
int64_t candidate_blocks(const float* score, int64_t n_visible, int64_t block, int64_t keep, int32_t* kept, Arena& a);

}  // namespace dsv4::model

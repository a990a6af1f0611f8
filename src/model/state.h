// Per-sequence state of the forward pass (spec §5.13): for every attention layer the raw
// sliding window, the compressed entries, the indexer keys and the compressor decode state.
// Stored entries are bf16 (the reference's values are bf16-representable, spec §8), so storing
// them as bf16 is lossless.
#pragma once

#include <cstdint>
#include <vector>

#include "core/byte_io.h"
#include "core/status.h"
#include "io/config.h"

namespace dsv4::model {

// Compressor decode state (spec §5.5): rows x width f32 for kv and score.
// CSA: 2m rows (previous window, current window) x 2d; HCA: m rows x d.
struct CompressorState {
  int64_t rows = 0, width = 0;
  std::vector<float> kv, score;
  void reset(int64_t rows_, int64_t width_);   // kv = 0, score = -inf
};

struct LayerState {
  io::LayerKind kind = io::LayerKind::swa;
  int ratio = 0;                          // m, for entry counts floor(P/m) (0 for SWA)
  int64_t entry_dim = 0, index_dim = 0;   // head_dim, index_head_dim
  std::vector<uint16_t> ring;   // [W, head_dim], slot p mod W holds position p
  std::vector<uint16_t> comp;   // [n_comp, head_dim] compressed entries 0..floor(P/m)-1
  std::vector<uint16_t> idx;    // [n_idx, index_head_dim] indexer keys (CSA only)
  // V4.1 KV sources (v4.1 §5.7, §8.1): the group's compressed latents and index keys, entries
  // 0..floor(P/m)-1, packed (kernels/cpu/fp4_pack.h: FP4 + E4M3 per 16 and FP4 + E8M0 per 32,
  // lossless against the reference's bf16 values) at comp_bytes / idx_bytes per entry.
  std::vector<uint8_t> comp_fp4, idx_fp4;
  int64_t comp_bytes = 0, idx_bytes = 0;   // 0: not a V4.1 KV source
  CompressorState comp_state, idx_state;   // V4.1 ratio-2 sources: comp_state holds the pending pair
  size_t memory_bytes() const;
};

// What one chunk of the main stack overwrote, so that the chunk can be cut back to a prefix of
// its tokens (speculative verification, addendum §A5.4-§A5.5; model/chunk_undo.h). Per layer:
// the ring slots the chunk writes, as they were; the entry counts; the compressor states as they
// were (CSA: all 2m rows, since a window close shifts them; HCA and V4.1's ratio-2 pending pair:
// the rows the chunk writes); and the compressor rows the chunk pushed, to replay the kept
// prefix. Buffers keep their capacity from round to round.
struct ChunkUndo {
  struct Saved {                   // one compressor's state rows before the chunk, and its pushes
    std::vector<float> kv, score;          // CSA: rows·width; HCA: n·width (slot (start+i) mod m)
    std::vector<float> log_kv, log_score;  // [n, width] the rows the chunk pushed, in order
  };
  struct Layer {
    std::vector<uint16_t> ring_rows;   // [n, Dh]: slot (start+i) mod W before the chunk
    size_t comp_size = 0, idx_size = 0;
    Saved comp, idx;
  };
  int64_t start = -1;              // position of the chunk's first token; -1 = nothing recorded
  int64_t n = 0;
  std::vector<Layer> layers;       // the main layers
  // V4.1 (v4.1 §9 "Rollback"): the Engram lookback before the chunk, and the compressed ids of the
  // chunk's tokens (logged by the forward), from which a cut rebuilds the kept prefix's lookback.
  std::vector<int32_t> engram_history, engram_ids;

  // A copied state starts with nothing recorded: a clone (prefix cache, snapshots) never cuts
  // back the original's chunk, and need not carry its buffers.
  ChunkUndo() = default;
  ChunkUndo(const ChunkUndo&) {}
  ChunkUndo& operator=(const ChunkUndo&) {
    start = -1;
    n = 0;
    return *this;
  }
  ChunkUndo(ChunkUndo&&) = default;
  ChunkUndo& operator=(ChunkUndo&&) = default;
};

struct SequenceState {
  int64_t pos = 0;                 // tokens consumed by the main stack
  int64_t mtp_pos = 0;             // positions consumed by the MTP block
  std::vector<LayerState> layers;  // num_hidden_layers main blocks, then the MTP block (if any)
  // V4.1 (v4.1 §5.3.2, §8.2): the Engram compressed ids of positions pos-1, pos-2, ... (as many as
  // the longest n-gram looks back; kEngramDead inside image spans), valid where the position >= 0.
  std::vector<int32_t> engram_history;
  ChunkUndo undo;                  // the last chunk, when it was run undoable (chunk_undo.h)
  size_t memory_bytes() const;
  // Room for the compressed entries and indexer keys of `positions` tokens, so that a decode
  // step up to there never grows a vector (the appends otherwise grow by ~1/8 when full).
  void reserve(int64_t positions);
};

// FOR BENCHMARKS ONLY: puts a fresh state at position `depth` as if `depth` tokens had been
// consumed, with pseudo-random contents of the right shapes instead of a model's: a full raw
// ring, floor(depth/m) compressed entries and floor(depth/4) indexer keys per layer, and
// compressor states holding the rows a real state would hold at that depth (spec §5.5, §5.13).
// Decoding from it costs what decoding at that depth costs (the same entries are read and the
// same top-k work is done); its logits mean nothing. mtp_pos stays 0.
// REQUIRES: s is fresh (pos == 0).
void fill_synthetic_state(SequenceState& s, int64_t depth, uint64_t seed);

SequenceState make_sequence_state(const io::ModelConfig& cfg);

// The state as bytes (the prefix cache's disk store, runtime/prefix_store.h): positions, then
// per layer its ring, compressed entries, indexer keys and compressor states (V4.1 KV sources:
// then their packed entries), then the V4.1 Engram history.
// REQUIRES: no chunk is open (s.undo records nothing).
void write_state(const SequenceState& s, ByteWriter& w);
// Reads what write_state wrote, checking every count and length against cfg: the layers and
// their kinds, ratios and ring and compressor shapes of make_sequence_state(cfg), floor(pos/m)
// compressed entries (and indexer keys for CSA), 0 <= mtp_pos <= pos <= max_context.
// Errors: corrupt_data naming what does not fit.
Result<SequenceState> read_state(ByteReader& r, const io::ModelConfig& cfg, int64_t max_context);

}  // namespace dsv4::model

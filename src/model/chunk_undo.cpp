#include "model/chunk_undo.h"

#include <algorithm>

#include "core/status.h"
#include "model/compressor.h"
#include "model/engram.h"

namespace dsv4::model {

namespace {

// CSA's window close shifts every row, so all of them are saved; HCA writes row (pos mod m) only.
void save_rows(const CompressorState& st, bool overlap, int64_t start, int64_t n, ChunkUndo::Saved& saved) {
  const int64_t w = st.width;
  if (overlap) {
    saved.kv.assign(st.kv.begin(), st.kv.end());
    saved.score.assign(st.score.begin(), st.score.end());
  } else {
    saved.kv.resize(size_t(n * w));
    saved.score.resize(size_t(n * w));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = (start + i) % st.rows;
      std::copy_n(st.kv.begin() + row * w, w, saved.kv.begin() + i * w);
      std::copy_n(st.score.begin() + row * w, w, saved.score.begin() + i * w);
    }
  }
  saved.log_kv.resize(size_t(n * w));
  saved.log_score.resize(size_t(n * w));
}

// Back to the state before the chunk. HCA restores from the last saved row to the first, so that
// with n > m the row's value before the chunk (saved first) is the one that stays.
void restore_rows(const ChunkUndo::Saved& saved, bool overlap, int64_t start, int64_t n, CompressorState& st) {
  const int64_t w = st.width;
  if (overlap) {
    std::copy(saved.kv.begin(), saved.kv.end(), st.kv.begin());
    std::copy(saved.score.begin(), saved.score.end(), st.score.begin());
    return;
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t row = (start + i) % st.rows;
    std::copy_n(saved.kv.begin() + i * w, w, st.kv.begin() + row * w);
    std::copy_n(saved.score.begin() + i * w, w, st.score.begin() + row * w);
  }
}

// Restores one compressor and replays the kept rows: entries closed by kept positions are
// appended again by the same code on the same rows.
void cut_compressor(const Model& m, const BlockWeights& b, const CompressorWeights& w, CompressorKind kind,
                    const ChunkUndo::Saved& saved, int64_t start, int64_t n, int64_t keep, size_t entries_before,
                    CompressorState& st, std::vector<uint16_t>& entries, Arena& a) {
  restore_rows(saved, w.overlap, start, n, st);
  entries.resize(entries_before);
  for (int64_t i = 0; i < keep; ++i)
    compressor_push(w, kind, m.rope_for(b.kind), float(m.cfg.rms_norm_eps), st, start + i,
                    saved.log_kv.data() + i * w.width, saved.log_score.data() + i * w.width, entries, a);
}

// A V4.1 KV source (v4.1 §9 "Rollback"): its packed entries are append-only and each is a causal
// function of the tokens up to the one that closes it, so the kept ones stay as the chunk wrote
// them and the rest are dropped (floor((P'+1)/m) entries remain). The ratio-2 pending pair is
// restored and the kept rows replayed through the same state machine (the pooled outputs, entries
// already kept, are discarded).
void cut_v41_source(const CompressorWeights& w, const ChunkUndo::Saved& saved, int64_t start, int64_t n, int64_t keep,
                    LayerState& st, Arena& a) {
  const int64_t entries = (start + keep) / st.ratio;
  st.comp_fp4.resize(size_t(entries * st.comp_bytes));
  st.idx_fp4.resize(size_t(entries * st.idx_bytes));
  if (st.ratio != 2) return;
  restore_rows(saved, false, start, n, st.comp_state);
  ArenaScope scope(a);
  float* pooled = a.alloc<float>(w.dim);
  for (int64_t i = 0; i < keep; ++i)
    compressor_pool(w, st.comp_state, start + i, saved.log_kv.data() + i * w.width,
                    saved.log_score.data() + i * w.width, pooled, a);
}

}  // namespace

void undo_begin(const io::ModelConfig& cfg, SequenceState& seq, int64_t n) {
  const int64_t W = cfg.sliding_window, Dh = cfg.head_dim, L = cfg.num_hidden_layers;
  DSV4_CHECK(n >= 1 && n <= W);
  ChunkUndo& u = seq.undo;
  u.start = seq.pos;
  u.n = n;
  u.layers.resize(size_t(L));
  for (int64_t l = 0; l < L; ++l) {
    const LayerState& st = seq.layers[size_t(l)];
    ChunkUndo::Layer& ul = u.layers[size_t(l)];
    ul.ring_rows.resize(size_t(n * Dh));
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(st.ring.begin() + ((u.start + i) % W) * Dh, Dh, ul.ring_rows.begin() + i * Dh);
    ul.comp_size = st.comp.size();
    ul.idx_size = st.idx.size();
    if (st.comp_bytes > 0) {   // a V4.1 KV source: its ratio-2 pending pair (v4.1 §9 "Rollback")
      if (st.ratio == 2) save_rows(st.comp_state, false, u.start, n, ul.comp);
      continue;
    }
    if (st.kind != io::LayerKind::swa) save_rows(st.comp_state, st.kind == io::LayerKind::csa, u.start, n, ul.comp);
    if (st.kind == io::LayerKind::csa) save_rows(st.idx_state, true, u.start, n, ul.idx);
  }
  u.engram_history = seq.engram_history;
  u.engram_ids.clear();
}

void undo_log_push(ChunkUndo::Saved& saved, int64_t i, int64_t width, const float* kvp, const float* score) {
  std::copy_n(kvp, width, saved.log_kv.begin() + i * width);
  std::copy_n(score, width, saved.log_score.begin() + i * width);
}

void undo_cut(const Model& m, SequenceState& seq, int64_t keep, Arena& a) {
  ChunkUndo& u = seq.undo;
  DSV4_CHECK(u.start >= 0 && seq.pos == u.start + u.n && keep >= 0 && keep <= u.n);
  const io::ModelConfig& c = m.cfg;
  const int64_t W = c.sliding_window, Dh = c.head_dim;
  if (keep < u.n) {
    for (size_t l = 0; l < u.layers.size(); ++l) {
      LayerState& st = seq.layers[l];
      const ChunkUndo::Layer& ul = u.layers[l];
      const BlockWeights& b = m.w.blocks[l];
      for (int64_t i = keep; i < u.n; ++i)
        std::copy_n(ul.ring_rows.begin() + i * Dh, Dh, st.ring.begin() + ((u.start + i) % W) * Dh);
      if (st.comp_bytes > 0) {
        cut_v41_source(b.attn.compressor, ul.comp, u.start, u.n, keep, st, a);
        continue;
      }
      if (st.kind != io::LayerKind::swa)
        cut_compressor(m, b, b.attn.compressor, CompressorKind::main, ul.comp, u.start, u.n, keep, ul.comp_size,
                       st.comp_state, st.comp, a);
      if (st.kind == io::LayerKind::csa)
        cut_compressor(m, b, b.attn.indexer.compressor, CompressorKind::indexer, ul.idx, u.start, u.n, keep,
                       ul.idx_size, st.idx_state, st.idx, a);
    }
    if (!u.engram_ids.empty()) {   // V4.1: the lookback of the kept prefix (v4.1 §9 step 1)
      DSV4_CHECK(int64_t(u.engram_ids.size()) == u.n);
      seq.engram_history = u.engram_history;
      engram_push_history(seq.engram_history, u.engram_ids.data(), keep);
    }
    seq.pos = u.start + keep;
  }
  u.start = -1;
  u.n = 0;
}

}  // namespace dsv4::model

#include "model/state.h"

#include <limits>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/status.h"
#include "kernels/cpu/fp4_pack.h"
#include "model/engram.h"

namespace dsv4::model {

void CompressorState::reset(int64_t rows_, int64_t width_) {
  rows = rows_;
  width = width_;
  kv.assign(size_t(rows * width), 0.0f);
  score.assign(size_t(rows * width), -std::numeric_limits<float>::infinity());
}

size_t LayerState::memory_bytes() const {
  return (ring.capacity() + comp.capacity() + idx.capacity()) * sizeof(uint16_t) + comp_fp4.capacity() +
         idx_fp4.capacity() +
         (comp_state.kv.capacity() + comp_state.score.capacity() + idx_state.kv.capacity() +
          idx_state.score.capacity()) * sizeof(float);
}

size_t SequenceState::memory_bytes() const {
  size_t n = 0;
  for (const auto& l : layers) n += l.memory_bytes();
  return n;
}

void SequenceState::reserve(int64_t positions) {
  for (LayerState& l : layers) {
    if (l.comp_bytes > 0) {   // a V4.1 KV source
      l.comp_fp4.reserve(size_t(positions / l.ratio * l.comp_bytes));
      l.idx_fp4.reserve(size_t(positions / l.ratio * l.idx_bytes));
    }
    if (l.kind == io::LayerKind::swa) continue;
    l.comp.reserve(size_t(positions / l.ratio * l.entry_dim));
    if (l.kind == io::LayerKind::csa) l.idx.reserve(size_t(positions / l.ratio * l.index_dim));
  }
}

namespace {
// Values like the stored ones in magnitude (RMS-normed entries, |x| ~ 1), bf16.
void fill_bf16(std::vector<uint16_t>& v, size_t n, Rng& rng) {
  v.resize(n);
  for (auto& x : v) x = f32_to_bf16(rng.normal());
}
void fill_rows(std::vector<float>& kv, std::vector<float>& score, int64_t width, int64_t r0, int64_t r1, Rng& rng) {
  for (int64_t i = r0 * width; i < r1 * width; ++i) {
    kv[size_t(i)] = rng.normal();
    score[size_t(i)] = rng.normal();
  }
}
// V4.1 packed entries of `dim` values: random normals packed as the forward packs them.
void fill_packed(std::vector<uint8_t>& v, int64_t entries, int64_t dim, bool e4m3, Rng& rng) {
  std::vector<float> x(static_cast<size_t>(dim));
  const int64_t bytes = e4m3 ? kernels::fp4_e4m3_bytes(dim) : kernels::fp4_e8m0_bytes(dim);
  v.resize(size_t(entries * bytes));
  for (int64_t j = 0; j < entries; ++j) {
    for (float& f : x) f = rng.normal();
    uint8_t* at = v.data() + j * bytes;
    if (e4m3) kernels::fp4_e4m3_pack(x.data(), dim, at, at + dim / 2);
    else kernels::fp4_e8m0_pack(x.data(), dim, at, at + dim / 2);
  }
}
}  // namespace

void fill_synthetic_state(SequenceState& s, int64_t depth, uint64_t seed) {
  DSV4_CHECK(s.pos == 0 && depth >= 0);
  Rng rng(derive_seed(seed, "synthetic state"));
  for (LayerState& l : s.layers) {
    if (depth > 0) fill_bf16(l.ring, l.ring.size(), rng);
    if (l.comp_bytes > 0) {   // a V4.1 KV source: its entries, and a pending token if depth is odd
      fill_packed(l.comp_fp4, depth / l.ratio, l.entry_dim, true, rng);
      fill_packed(l.idx_fp4, depth / l.ratio, l.index_dim, false, rng);
      if (l.ratio == 2 && depth % 2 == 1) fill_rows(l.comp_state.kv, l.comp_state.score, l.comp_state.width, 0, 1, rng);
      continue;
    }
    // Once a window has completed every row holds a token (the leftover ones, the last complete
    // window for CSA, stale ones otherwise); before that only the first tokens' rows (CSA: from
    // row m, the current window) and the rest stay (0, -inf).
    const int64_t m = l.ratio;
    switch (l.kind) {
      case io::LayerKind::swa:
        break;
      case io::LayerKind::csa:
        fill_bf16(l.comp, size_t(depth / m * l.entry_dim), rng);
        fill_bf16(l.idx, size_t(depth / m * l.index_dim), rng);
        for (CompressorState* cs : {&l.comp_state, &l.idx_state})
          fill_rows(cs->kv, cs->score, cs->width, depth >= m ? 0 : m, depth >= m ? 2 * m : m + depth, rng);
        break;
      case io::LayerKind::hca:
        fill_bf16(l.comp, size_t(depth / m * l.entry_dim), rng);
        fill_rows(l.comp_state.kv, l.comp_state.score, l.comp_state.width, 0, depth >= m ? m : depth, rng);
        break;
    }
  }
  s.pos = depth;
}

namespace {
// v4.1 §8: a ring per layer; per KV source the packed entries and (ratio 2) the pending pair.
SequenceState make_v41_state(const io::ModelConfig& cfg) {
  SequenceState s;
  s.layers.resize(size_t(cfg.num_hidden_layers));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    LayerState& ls = s.layers[size_t(l)];
    const io::V41Layer& r = cfg.v41.layers[size_t(l)];
    ls.ring.assign(size_t(cfg.sliding_window * cfg.head_dim), 0);
    ls.ratio = r.ratio;
    ls.entry_dim = cfg.head_dim;
    ls.index_dim = cfg.index_head_dim;
    if (!r.kv_source) continue;
    ls.comp_bytes = kernels::fp4_e4m3_bytes(cfg.head_dim);
    ls.idx_bytes = kernels::fp4_e8m0_bytes(cfg.index_head_dim);
    if (r.ratio == 2) ls.comp_state.reset(2, cfg.head_dim);
  }
  s.engram_history.assign(size_t(std::max<int64_t>(0, cfg.v41.engram.max_ngram_size - 1)), kEngramDead);
  return s;
}
}  // namespace

SequenceState make_sequence_state(const io::ModelConfig& cfg) {
  if (cfg.architecture == io::Architecture::v41) return make_v41_state(cfg);
  SequenceState s;
  const int64_t total = cfg.state_blocks();
  s.layers.resize(size_t(total));
  for (int64_t l = 0; l < total; ++l) {
    LayerState& ls = s.layers[size_t(l)];
    ls.ring.assign(size_t(cfg.sliding_window * cfg.head_dim), 0);
    const int m = cfg.ratio(l);
    ls.kind = cfg.layer_kind(l);
    ls.ratio = m;
    ls.entry_dim = cfg.head_dim;
    ls.index_dim = cfg.index_head_dim;
    switch (ls.kind) {   // spec §5.5: CSA keeps two windows of 2d-wide rows, HCA one of d
      case io::LayerKind::swa:
        break;
      case io::LayerKind::csa:
        ls.comp_state.reset(2 * m, 2 * cfg.head_dim);
        ls.idx_state.reset(2 * m, 2 * cfg.index_head_dim);
        break;
      case io::LayerKind::hca:
        ls.comp_state.reset(m, cfg.head_dim);
        break;
    }
  }
  return s;
}

namespace {
void write_compressor(const CompressorState& c, ByteWriter& w) {
  w.put<int64_t>(c.rows);
  w.put<int64_t>(c.width);
  w.put_array<float>(c.kv);
  w.put_array<float>(c.score);
}

Status read_compressor(ByteReader& r, const CompressorState& fresh, CompressorState* c, const std::string& where) {
  DSV4_TRY(r.get(&c->rows));
  DSV4_TRY(r.get(&c->width));
  if (c->rows != fresh.rows || c->width != fresh.width)
    return Status::corrupt_data(r.what() + ": " + where + " compressor state is " + std::to_string(c->rows) + "x" +
                                std::to_string(c->width) + ", expected " + std::to_string(fresh.rows) + "x" +
                                std::to_string(fresh.width));
  DSV4_TRY(r.get_array(&c->kv, uint64_t(fresh.kv.size()), "compressor kv"));
  return r.get_array(&c->score, uint64_t(fresh.score.size()), "compressor score");
}
}  // namespace

void write_state(const SequenceState& s, ByteWriter& w) {
  DSV4_CHECK(s.undo.start < 0);
  w.put<int64_t>(s.pos);
  w.put<int64_t>(s.mtp_pos);
  w.put<uint64_t>(s.layers.size());
  for (const LayerState& l : s.layers) {
    w.put<uint8_t>(uint8_t(l.kind));
    w.put<int32_t>(l.ratio);
    w.put_array<uint16_t>(l.ring);
    w.put_array<uint16_t>(l.comp);
    w.put_array<uint16_t>(l.idx);
    write_compressor(l.comp_state, w);
    write_compressor(l.idx_state, w);
    if (l.comp_bytes > 0) {   // a V4.1 KV source: its packed entries (v4.1 §8.1)
      w.put_array<uint8_t>(l.comp_fp4);
      w.put_array<uint8_t>(l.idx_fp4);
    }
  }
  if (!s.engram_history.empty()) w.put_array<int32_t>(s.engram_history);   // V4.1: v4.1 §5.3.2
}

Result<SequenceState> read_state(ByteReader& r, const io::ModelConfig& cfg, int64_t max_context) {
  SequenceState s = make_sequence_state(cfg);
  DSV4_TRY(r.get(&s.pos));
  DSV4_TRY(r.get(&s.mtp_pos));
  if (s.pos < 0 || s.pos > max_context || s.mtp_pos < 0 || s.mtp_pos > s.pos)
    return Status::corrupt_data(r.what() + ": positions " + std::to_string(s.pos) + " / " + std::to_string(s.mtp_pos) +
                                " outside [0, " + std::to_string(max_context) + "]");
  uint64_t layers = 0;
  DSV4_TRY(r.get(&layers));
  if (layers != s.layers.size())
    return Status::corrupt_data(r.what() + ": " + std::to_string(layers) + " layers, expected " +
                                std::to_string(s.layers.size()));
  for (size_t i = 0; i < s.layers.size(); ++i) {
    LayerState& l = s.layers[i];
    const std::string where = "layer " + std::to_string(i);
    uint8_t kind = 0;
    int32_t ratio = 0;
    DSV4_TRY(r.get(&kind));
    DSV4_TRY(r.get(&ratio));
    if (kind != uint8_t(l.kind) || ratio != l.ratio)
      return Status::corrupt_data(r.what() + ": " + where + " is not of this model's kind or compression ratio");
    const uint64_t entries = l.kind == io::LayerKind::swa ? 0 : uint64_t(s.pos / l.ratio);
    DSV4_TRY(r.get_array(&l.ring, uint64_t(l.ring.size()), "ring"));
    DSV4_TRY(r.get_array(&l.comp, entries * uint64_t(l.entry_dim), "compressed entries"));
    DSV4_TRY(r.get_array(&l.idx, l.kind == io::LayerKind::csa ? entries * uint64_t(l.index_dim) : 0, "indexer keys"));
    const CompressorState fresh_comp = l.comp_state, fresh_idx = l.idx_state;
    DSV4_TRY(read_compressor(r, fresh_comp, &l.comp_state, where));
    DSV4_TRY(read_compressor(r, fresh_idx, &l.idx_state, where));
    if (l.comp_bytes > 0) {
      const uint64_t sources = uint64_t(s.pos / l.ratio);
      DSV4_TRY(r.get_array(&l.comp_fp4, sources * uint64_t(l.comp_bytes), "packed compressed entries"));
      DSV4_TRY(r.get_array(&l.idx_fp4, sources * uint64_t(l.idx_bytes), "packed indexer keys"));
    }
  }
  if (!s.engram_history.empty()) {
    DSV4_TRY(r.get_array(&s.engram_history, uint64_t(s.engram_history.size()), "Engram history"));
    for (int32_t id : s.engram_history)
      if (id < kEngramDead)
        return Status::corrupt_data(r.what() + ": Engram history holds " + std::to_string(id) + ", not an id");
  }
  return s;
}

}  // namespace dsv4::model

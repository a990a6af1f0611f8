#include "model/state.h"

#include <limits>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/status.h"

namespace dsv4::model {

void CompressorState::reset(int64_t rows_, int64_t width_) {
  rows = rows_;
  width = width_;
  kv.assign(size_t(rows * width), 0.0f);
  score.assign(size_t(rows * width), -std::numeric_limits<float>::infinity());
}

size_t LayerState::memory_bytes() const {
  return (ring.capacity() + comp.capacity() + idx.capacity()) * sizeof(uint16_t) +
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
}  // namespace

void fill_synthetic_state(SequenceState& s, int64_t depth, uint64_t seed) {
  DSV4_CHECK(s.pos == 0 && depth >= 0);
  Rng rng(derive_seed(seed, "synthetic state"));
  for (LayerState& l : s.layers) {
    if (depth > 0) fill_bf16(l.ring, l.ring.size(), rng);
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

SequenceState make_sequence_state(const io::ModelConfig& cfg) {
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

}  // namespace dsv4::model

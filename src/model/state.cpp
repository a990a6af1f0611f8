#include "model/state.h"

#include <limits>

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
    if (l.ratio <= 0) continue;
    l.comp.reserve(size_t(positions / l.ratio * l.entry_dim));
    if (l.ratio == 4) l.idx.reserve(size_t(positions / 4 * l.index_dim));
  }
}

SequenceState make_sequence_state(const io::ModelConfig& cfg) {
  SequenceState s;
  const int64_t total = cfg.num_hidden_layers + cfg.num_nextn_predict_layers;
  s.layers.resize(size_t(total));
  for (int64_t l = 0; l < total; ++l) {
    LayerState& ls = s.layers[size_t(l)];
    ls.ring.assign(size_t(cfg.sliding_window * cfg.head_dim), 0);
    const int m = cfg.ratio(l);
    ls.ratio = m;
    ls.entry_dim = cfg.head_dim;
    ls.index_dim = cfg.index_head_dim;
    if (m == 4) {
      ls.comp_state.reset(8, 2 * cfg.head_dim);
      ls.idx_state.reset(8, 2 * cfg.index_head_dim);
    } else if (m == 128) {
      ls.comp_state.reset(128, cfg.head_dim);
    }
  }
  return s;
}

}  // namespace dsv4::model

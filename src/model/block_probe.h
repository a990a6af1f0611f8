// Intermediate tensors of one block for a range of positions, for finding where the engine
// departs from the reference (`dsv4 score --dump-layer N --rows A..B`). The forward pass hands
// its intermediates over only while Scratch::probe is set; unset, it costs one pointer test per
// sub-step and allocates nothing.
//
// Every series is a [rows, width] f32 tensor keyed by position: per query row the quantities of
// the token at that position; per compressed entry the position of the token that closed its
// window (the entry is j = position / m).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace dsv4::model {

class BlockProbe {
 public:
  // Records block `layer` (index into the model's blocks) at positions [pos0, pos1).
  BlockProbe(int64_t layer, int64_t pos0, int64_t pos1) : layer_(layer), pos0_(pos0), pos1_(pos1) {}

  bool watches(int64_t layer) const { return layer == layer_; }
  bool watches(int64_t layer, int64_t pos) const { return layer == layer_ && pos >= pos0_ && pos < pos1_; }

  // Rows of a [rows, width] tensor whose row r belongs to positions[r]; keeps those in range.
  // Thread-safe (queries of a prefill record from their threads).
  void record(const std::string& name, const int64_t* positions, int64_t rows, int64_t width, const float* data);
  void record_row(const std::string& name, int64_t pos, int64_t width, const float* data) {
    record(name, &pos, 1, width, data);
  }

  // One F32 tensor `name` [n, width] per series (rows by ascending position) and an I64
  // `name.positions` [n]; metadata gives the layer and the range.
  Status write(const std::string& path) const;

 private:
  struct Series {
    int64_t width = 0;
    std::map<int64_t, std::vector<float>> rows;   // position → row (a later record replaces)
  };
  int64_t layer_;
  int64_t pos0_, pos1_;
  mutable std::mutex mu_;
  std::map<std::string, Series> series_;
};

}  // namespace dsv4::model

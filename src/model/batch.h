// A batched step: the rows of several sequences' chunks stacked one after another. Position-wise
// work (projections, MoE, hyper-connections) runs over all rows at once; attention and the
// compressors run per segment against that sequence's state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/state.h"

namespace dsv4::model {

struct Segment {
  SequenceState* seq = nullptr;
  const int32_t* tokens = nullptr;   // n token ids (hash routing reads them)
  int64_t n = 0;
  int64_t start_pos = 0;             // absolute position of the first row
  int64_t row0 = 0;                  // index of the first row in the batch
};

struct Batch {
  std::vector<Segment> segments;
  std::vector<int64_t> positions;    // per row
  std::vector<int32_t> tokens;       // per row
  int64_t rows() const { return int64_t(positions.size()); }
  void add(SequenceState* seq, const int32_t* tokens, int64_t n, int64_t start_pos);
  void clear();   // keeps the capacity: a reused Batch allocates nothing once warm
};

}  // namespace dsv4::model

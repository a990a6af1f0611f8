#include "model/batch.h"

namespace dsv4::model {

void Batch::add(SequenceState* seq, const int32_t* toks, int64_t n, int64_t start_pos) {
  Segment s{seq, toks, n, start_pos, rows()};
  segments.push_back(s);
  for (int64_t i = 0; i < n; ++i) {
    positions.push_back(start_pos + i);
    tokens.push_back(toks[i]);
  }
}

void Batch::clear() {
  segments.clear();
  positions.clear();
  tokens.clear();
}

}  // namespace dsv4::model

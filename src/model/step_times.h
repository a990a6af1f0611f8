// Wall time of forward steps by part: what `dsv4 bench` reports as its decode breakdown. The
// engine fills one only when asked (Engine::time_steps); then each timed part costs two clock
// reads per layer.
#pragma once

#include <chrono>

namespace dsv4::model {

struct StepTimes {
  double attention_s = 0;   // attention_forward of every block (projections, compressor, indexer, attention)
  double ffn_s = 0;         // moe_forward of every block (router, routed and shared experts)
  double head_s = 0;        // head_logits (hc_head collapse, final norm, head.weight)
};

// Adds the wall time of its scope to *sink; does nothing when sink is null.
class AddElapsed {
 public:
  explicit AddElapsed(double* sink) : sink_(sink) {
    if (sink_) t0_ = std::chrono::steady_clock::now();
  }
  ~AddElapsed() {
    if (sink_) *sink_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  AddElapsed(const AddElapsed&) = delete;
  AddElapsed& operator=(const AddElapsed&) = delete;

 private:
  double* sink_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace dsv4::model

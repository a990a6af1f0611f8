// An Engine whose drafts are known in advance: the target's own greedy continuation, with the
// draft at one chosen slot per round made wrong. It controls the accepted length exactly, which
// a random synthetic drafter cannot (it accepts almost nothing): `dsv4 bench --speculative`
// times decoding at each accepted length 0..γ, and the runtime tests force a rejection at every
// draft slot. The wrapped engine's own drafter still runs each round (its cost and its state
// updates are real); only the proposed tokens are replaced.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/engine.h"

namespace dsv4::eval {

class OracleDrafts final : public runtime::Engine {
 public:
  // stream: the prompt followed by the target's greedy output (position p holds the token the
  // target consumes at p). wrong_slot(round): the draft slot made wrong in that round (0-based;
  // >= the draft count: none), so a greedy round accepts min(wrong_slot, drafts) tokens.
  // max_drafts: the block size offered (the inner drafter's own may be smaller).
  OracleDrafts(runtime::Engine& inner, std::vector<int32_t> stream, int max_drafts,
               std::function<int(int64_t round)> wrong_slot);

  const io::ModelConfig& config() const override { return inner_.config(); }
  int64_t max_context() const override { return inner_.max_context(); }
  std::unique_ptr<runtime::Sequence> new_sequence() const override { return inner_.new_sequence(); }
  Status step(std::span<runtime::Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
              std::span<const runtime::Feed> feeds, float* logits) override {
    return inner_.step(seqs, tokens, feeds, logits);
  }
  Status commit(runtime::Sequence& seq, int64_t keep) override { return inner_.commit(seq, keep); }
  int max_draft_tokens() const override { return max_drafts_; }
  Result<int> draft(runtime::Sequence& seq, int32_t anchor, const runtime::DraftOptions& options,
                    runtime::DraftChooser& chooser, int32_t* tokens, float* logits) override;

 private:
  runtime::Engine& inner_;
  std::vector<int32_t> stream_;
  int max_drafts_;
  std::function<int(int64_t)> wrong_slot_;
  int64_t rounds_ = 0;
};

}  // namespace dsv4::eval

// A per-request rule on which tokens may come next (structured outputs: text/json_constraint.h
// implements it for JSON schemas). The scheduler applies it to the answer part of the output:
// from the first token (answer_start_token < 0) or after the answer start token and the answer
// prefix. Each sampled position's logits are masked before sampling (a token the rule refuses
// gets -inf, so penalties and bias cannot bring it back), and every emitted token advances it;
// a verify chunk of speculative decoding is masked position by position with the rule advanced
// along the tokens accepted before, so a greedy output is the same with or without drafts.
//
// Header-only interface: the runtime calls it, a layer to its right implements it.
// Thread-safety: used by one thread at a time (the scheduler's inference thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace dsv4::runtime {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets the logits of the tokens that may not come next to -inf (the end-of-sentence token is
  // allowed only where the output may end). False when no token may: the request cannot go on.
  virtual bool mask(std::span<float> logits) = 0;
  // Moves past `token`, one that mask() allowed.
  virtual void advance(int32_t token) = 0;
  // The same rule at the same position, advancing independently (drafting ahead of the output).
  virtual std::unique_ptr<TokenConstraint> clone() const = 0;
};

}  // namespace dsv4::runtime

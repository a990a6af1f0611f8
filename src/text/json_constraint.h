// Grammar-constrained decoding of JSON (structured outputs): the runtime::TokenConstraint that
// lets through exactly the tokens whose bytes continue a text valid under a JsonGrammar, and the
// end-of-sentence token once the value is complete (then nothing else).
//
// The masks are text/trie_mask.h's walks of the vocabulary trie, cached by the matcher's thread
// stacks, so a string being written or a repeated structure costs one lookup:
// bench/text/constraint_mask_bench.cpp measures both.
//
// Clones share the mask cache (one thread at a time: the scheduler's inference thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "runtime/token_constraint.h"
#include "text/json_matcher.h"
#include "text/trie_mask.h"

namespace dsv4::text {

class JsonConstraint final : public runtime::TokenConstraint {
 public:
  JsonConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const VocabTrie> vocab);

  bool mask(std::span<float> logits) override;
  void advance(int32_t token) override;
  std::unique_ptr<runtime::TokenConstraint> clone() const override;

  // The ordinary tokens that may come next (the end-of-sentence token aside: see complete()).
  const TokenBits& allowed();
  // The value is complete: the end-of-sentence token may come (and nothing else).
  bool complete() const { return matcher_.accepting(); }

 private:
  JsonConstraint(const JsonConstraint&) = default;

  TrieMasker<JsonMatcher> masker_;
  JsonMatcher matcher_;
  bool ended_ = false;  // the end-of-sentence token was taken
};

}  // namespace dsv4::text

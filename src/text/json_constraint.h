// Grammar-constrained decoding of JSON (structured outputs): the runtime::TokenConstraint that
// lets through exactly the tokens whose bytes continue a text valid under a JsonGrammar, and the
// end-of-sentence token once the value is complete (then nothing else).
//
// The mask of a position is the union of the masks of its threads (json_matcher.h). A thread's
// mask is a walk of the vocabulary trie (vocab_trie.h) that drops a subtree at its first refused
// byte; inside a string the string-neutral tokens are taken without a walk, and only the other
// tokens' trie is walked. Masks are cached by the thread's stack, so a string being written or
// a repeated structure costs one lookup: bench/text/json_mask_bench.cpp measures both.
//
// Clones share the mask cache (one thread at a time: the scheduler's inference thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/token_constraint.h"
#include "text/json_matcher.h"
#include "text/vocab_trie.h"

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
  struct Cache;
  JsonConstraint(const JsonConstraint&) = default;
  const TokenBits& thread_mask(const JsonMatcher& thread);
  void walk(const VocabTrie::Trie& trie, uint32_t node, size_t depth, TokenBits& out);

  std::shared_ptr<const VocabTrie> vocab_;
  std::shared_ptr<Cache> cache_;
  JsonMatcher matcher_;
  bool ended_ = false;  // the end-of-sentence token was taken
};

}  // namespace dsv4::text

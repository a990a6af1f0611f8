// Tools' `strict: true` enforced while decoding: the runtime::TokenConstraint that lets through
// exactly the tokens whose bytes continue an answer the DSML matcher takes (text/dsml_matcher.h:
// free text, then tool calls of declared tools whose strict arguments follow their schemas), and
// the end-of-sentence token where the answer may end.
//
// The DSML marker `｜DSML｜` is an added token of the V4 / V4.1 vocabularies, outside the trie
// (text/vocab_trie.h): it is let through wherever the matcher takes its bytes, as EOS is where
// the matcher accepts. Ordinary tokens spelling the same bytes are allowed too: the parser reads
// text, so they make the same call (the model writes the added token).
// The masks are text/trie_mask.h's walks, cached by matcher position; clones share the cache
// (one thread at a time: the scheduler's inference thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "runtime/token_constraint.h"
#include "text/dsml_matcher.h"
#include "text/trie_mask.h"

namespace dsv4::text {

class DsmlConstraint final : public runtime::TokenConstraint {
 public:
  // `marker_id`: the added token `｜DSML｜` (-1: the vocabulary has none). `start`: answer text
  // forced before the first constrained token (tool_choice required / named open the block:
  // text/output_steering.h), which the matcher must take.
  DsmlConstraint(std::shared_ptr<const DsmlGrammar> grammar, std::shared_ptr<const VocabTrie> vocab, int32_t marker_id,
                 std::string_view start = {});

  bool mask(std::span<float> logits) override;
  void advance(int32_t token) override;
  std::unique_ptr<runtime::TokenConstraint> clone() const override;

  // The ordinary tokens that may come next.
  const TokenBits& allowed() { return masker_.allowed(matcher_); }
  // The answer may end: the end-of-sentence token may come.
  bool complete() const { return matcher_.accepting(); }
  // The marker token may come next.
  bool marker_allowed() const;

 private:
  DsmlConstraint(const DsmlConstraint&) = default;

  TrieMasker<DsmlMatcher> masker_;
  DsmlMatcher matcher_;
  int32_t marker_id_;
  bool ended_ = false;
};

}  // namespace dsv4::text

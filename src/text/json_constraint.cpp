#include "text/json_constraint.h"

#include <limits>

namespace dsv4::text {

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const VocabTrie> vocab)
    : masker_(std::move(vocab)), matcher_(std::move(grammar)) {}

std::unique_ptr<runtime::TokenConstraint> JsonConstraint::clone() const {
  return std::unique_ptr<runtime::TokenConstraint>(new JsonConstraint(*this));
}

const TokenBits& JsonConstraint::allowed() { return masker_.allowed(matcher_); }

bool JsonConstraint::mask(std::span<float> logits) {
  if (ended_ || matcher_.dead()) {
    for (float& l : logits) l = -std::numeric_limits<float>::infinity();
    return false;
  }
  const int32_t eos = complete() ? masker_.vocab().eos_id() : -1;
  return mask_logits(masker_.vocab(), allowed(), std::span(&eos, 1), logits);
}

void JsonConstraint::advance(int32_t token) {
  const VocabTrie& vocab = masker_.vocab();
  if (token == vocab.eos_id()) {
    DSV4_CHECK(complete());
    ended_ = true;
    return;
  }
  DSV4_CHECK(token >= 0 && token < vocab.vocab_size() && !vocab.bytes(token).empty());
  const bool taken = matcher_.feed(vocab.bytes(token));
  DSV4_CHECK(taken);
}

}  // namespace dsv4::text

#include "text/dsml_constraint.h"

#include <limits>

#include "text/chat_tokens.h"

namespace dsv4::text {

DsmlConstraint::DsmlConstraint(std::shared_ptr<const DsmlGrammar> grammar, std::shared_ptr<const VocabTrie> vocab,
                               int32_t marker_id, std::string_view start)
    : masker_(std::move(vocab)), matcher_(std::move(grammar)), marker_id_(marker_id) {
  const bool taken = matcher_.feed(start);
  DSV4_CHECK(taken);
}

std::unique_ptr<runtime::TokenConstraint> DsmlConstraint::clone() const {
  return std::unique_ptr<runtime::TokenConstraint>(new DsmlConstraint(*this));
}

bool DsmlConstraint::marker_allowed() const {
  if (marker_id_ < 0 || matcher_.dead()) return false;
  DsmlMatcher probe(matcher_);
  return probe.feed(chat::kDsml);
}

bool DsmlConstraint::mask(std::span<float> logits) {
  if (ended_ || matcher_.dead()) {
    for (float& l : logits) l = -std::numeric_limits<float>::infinity();
    return false;
  }
  const int32_t also[2] = {complete() ? masker_.vocab().eos_id() : -1, marker_allowed() ? marker_id_ : -1};
  return mask_logits(masker_.vocab(), allowed(), also, logits);
}

void DsmlConstraint::advance(int32_t token) {
  const VocabTrie& vocab = masker_.vocab();
  if (token == vocab.eos_id()) {
    DSV4_CHECK(complete());
    ended_ = true;
    return;
  }
  std::string_view bytes;
  if (token == marker_id_) bytes = chat::kDsml;
  else if (token >= 0 && token < vocab.vocab_size()) bytes = vocab.bytes(token);
  DSV4_CHECK(!bytes.empty());
  const bool taken = matcher_.feed(bytes);
  DSV4_CHECK(taken);
}

}  // namespace dsv4::text

#include "text/json_constraint.h"

#include <algorithm>
#include <limits>

namespace dsv4::text {

// Masks by thread stack, and the walk's per-depth matchers (reused, so a warm walk allocates
// nothing). 64 masks of the V4 vocabulary are 1 MiB.
struct JsonConstraint::Cache {
  static constexpr size_t kMaxEntries = 64;
  std::unordered_map<std::string, TokenBits> masks;
  std::vector<JsonMatcher> depth;
  TokenBits merged;
};

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const VocabTrie> vocab)
    : vocab_(std::move(vocab)), cache_(std::make_shared<Cache>()), matcher_(std::move(grammar)) {}

std::unique_ptr<runtime::TokenConstraint> JsonConstraint::clone() const {
  return std::unique_ptr<runtime::TokenConstraint>(new JsonConstraint(*this));
}

void JsonConstraint::walk(const VocabTrie::Trie& trie, uint32_t node, size_t depth, TokenBits& out) {
  const VocabTrie::Node& n = trie.nodes[node];
  for (uint32_t c = n.first_child; c < n.first_child + n.child_count; ++c) {
    const VocabTrie::Node& child = trie.nodes[c];
    if (cache_->depth.size() <= depth + 1) cache_->depth.push_back(cache_->depth[depth]);
    if (!cache_->depth[depth].step(child.byte, cache_->depth[depth + 1])) continue;
    for (uint32_t t = child.token_begin; t < child.token_end; ++t) set_token_bit(out, trie.ids[t]);
    if (child.child_count > 0) walk(trie, c, depth + 1, out);
  }
}

const TokenBits& JsonConstraint::thread_mask(const JsonMatcher& thread) {
  std::string key(thread.key());
  if (auto it = cache_->masks.find(key); it != cache_->masks.end()) return it->second;
  if (cache_->masks.size() >= Cache::kMaxEntries) cache_->masks.clear();
  TokenBits bits;
  const bool in_string = thread.in_string_body();
  if (in_string) bits = vocab_->neutral();
  else bits.assign(vocab_->words(), 0);
  if (cache_->depth.empty()) cache_->depth.push_back(thread);
  else cache_->depth[0] = thread;
  walk(in_string ? vocab_->non_neutral() : vocab_->all(), 0, 0, bits);
  return cache_->masks.emplace(std::move(key), std::move(bits)).first->second;
}

const TokenBits& JsonConstraint::allowed() {
  if (matcher_.thread_count() == 1) return thread_mask(matcher_);
  TokenBits& merged = cache_->merged;
  merged.assign(vocab_->words(), 0);
  for (size_t i = 0; i < matcher_.thread_count(); ++i) {
    const TokenBits& m = thread_mask(matcher_.thread(i));
    for (size_t w = 0; w < merged.size(); ++w) merged[w] |= m[w];
  }
  return merged;
}

bool JsonConstraint::mask(std::span<float> logits) {
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  if (ended_ || matcher_.dead()) {
    for (float& l : logits) l = kBanned;
    return false;
  }
  const TokenBits& bits = allowed();
  const int32_t eos = complete() ? vocab_->eos_id() : -1;
  const size_t known = std::min(logits.size(), size_t(vocab_->vocab_size()));
  bool any = eos >= 0 && size_t(eos) < known;
  for (size_t w = 0; w * 64 < known; ++w) {
    const uint64_t word = bits[w];
    const size_t begin = w * 64, end = std::min(begin + 64, known);
    any |= (end - begin == 64 ? word : word & ((uint64_t(1) << (end - begin)) - 1)) != 0;
    if (word == ~uint64_t(0) && end - begin == 64) continue;
    for (size_t t = begin; t < end; ++t)
      if (!(word >> (t - begin) & 1) && int32_t(t) != eos) logits[t] = kBanned;
  }
  for (size_t t = known; t < logits.size(); ++t) logits[t] = kBanned;
  return any;
}

void JsonConstraint::advance(int32_t token) {
  if (token == vocab_->eos_id()) {
    DSV4_CHECK(complete());
    ended_ = true;
    return;
  }
  DSV4_CHECK(token >= 0 && token < vocab_->vocab_size() && !vocab_->bytes(token).empty());
  const bool taken = matcher_.feed(vocab_->bytes(token));
  DSV4_CHECK(taken);
}

}  // namespace dsv4::text

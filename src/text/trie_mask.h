// The token mask of a byte-level automaton over a vocabulary trie (text/vocab_trie.h), shared by
// the grammar constraints: JSON (text/json_constraint.h) and DSML tool calls
// (text/dsml_constraint.h).
//
// The mask of a position is the union of the masks of its threads. A thread's mask is a walk of
// the trie that drops a subtree at its first refused byte; a thread inside a string body (a JSON
// string, a raw DSML parameter value) takes the string-neutral tokens without a walk, and only
// the other tokens' trie is walked. Masks are cached by the thread's key, so a string being
// written or a repeated structure costs one lookup (bench/text/constraint_mask_bench.cpp).
//
// A Matcher is a value type with
//   bool step(uint8_t b, Matcher& out) const;   // out = this position after b; false: refused
//   size_t thread_count() const;  Matcher thread(size_t i) const;
//   bool in_string_body() const;  // one thread, between characters of a string body
//   key() const;                  // bytes (string or string_view): equal keys, equal positions
// One thread at a time (the scheduler's inference thread); copies share the cache.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/vocab_trie.h"

namespace dsv4::text {

template <class Matcher>
class TrieMasker {
 public:
  explicit TrieMasker(std::shared_ptr<const VocabTrie> vocab) : vocab_(std::move(vocab)), cache_(std::make_shared<Cache>()) {}

  const VocabTrie& vocab() const { return *vocab_; }

  // The ordinary tokens whose bytes `m` takes (valid until the next call).
  const TokenBits& allowed(const Matcher& m) {
    if (m.thread_count() == 1) return thread_mask(m);
    TokenBits& merged = cache_->merged;
    merged.assign(vocab_->words(), 0);
    for (size_t i = 0; i < m.thread_count(); ++i) {
      const TokenBits& t = thread_mask(m.thread(i));
      for (size_t w = 0; w < merged.size(); ++w) merged[w] |= t[w];
    }
    return merged;
  }

 private:
  // Masks by thread key, and the walk's per-depth matchers (reused, so a warm walk allocates
  // nothing). 64 masks of the V4 vocabulary are 1 MiB.
  struct Cache {
    static constexpr size_t kMaxEntries = 64;
    std::unordered_map<std::string, TokenBits> masks;
    std::vector<Matcher> depth;
    TokenBits merged;
  };

  void walk(const VocabTrie::Trie& trie, uint32_t node, size_t depth, TokenBits& out) {
    const VocabTrie::Node& n = trie.nodes[node];
    for (uint32_t c = n.first_child; c < n.first_child + n.child_count; ++c) {
      const VocabTrie::Node& child = trie.nodes[c];
      if (cache_->depth.size() <= depth + 1) cache_->depth.push_back(cache_->depth[depth]);
      if (!cache_->depth[depth].step(child.byte, cache_->depth[depth + 1])) continue;
      for (uint32_t t = child.token_begin; t < child.token_end; ++t) set_token_bit(out, trie.ids[t]);
      if (child.child_count > 0) walk(trie, c, depth + 1, out);
    }
  }

  const TokenBits& thread_mask(const Matcher& thread) {
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

  std::shared_ptr<const VocabTrie> vocab_;
  std::shared_ptr<Cache> cache_;
};

// Sets to -inf the logits of the tokens outside `bits` and `also` (added tokens the rule lets
// through: the end-of-sentence token where the output may end, a DSML marker); ids past the
// vocabulary are banned. False when no token is left.
bool mask_logits(const VocabTrie& vocab, const TokenBits& bits, std::span<const int32_t> also, std::span<float> logits);

}  // namespace dsv4::text

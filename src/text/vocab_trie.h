// The ordinary tokens of a vocabulary as a byte trie, for grammar-constrained decoding
// (text/json_constraint.h): a token may come next when the grammar's automaton takes all of its
// bytes, and tokens that share a prefix share the automaton's steps over it, so a walk of the
// trie that stops at the first refused byte tests the whole vocabulary at the cost of the
// prefixes that survive.
//
// Added tokens (BOS, EOS, <think>, the DSML markers, ...) are left out: they carry meaning to the
// prompt format and the completion parser, so they never appear inside constrained text.
// Immutable once built; share it (std::shared_ptr<const VocabTrie>) between requests and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace dsv4::text {

// A set of token ids, one bit each.
using TokenBits = std::vector<uint64_t>;
inline bool token_bit(const TokenBits& bits, int32_t id) { return bits[size_t(id) >> 6] >> (id & 63) & 1; }
inline void set_token_bit(TokenBits& bits, int32_t id) { bits[size_t(id) >> 6] |= uint64_t(1) << (id & 63); }

class VocabTrie {
 public:
  struct Node {
    uint32_t first_child = 0, child_count = 0;  // children: nodes [first_child, first_child + child_count)
    uint32_t token_begin = 0, token_end = 0;    // tokens spelled by exactly this path: ids_[begin, end)
    uint8_t byte = 0;                           // the edge from the parent
  };
  // One trie over `tokens` (id, bytes); node 0 is the root.
  struct Trie {
    std::vector<Node> nodes;
    std::vector<int32_t> ids;
  };

  // The tokenizer's vocabulary, added tokens left out; EOS is its end-of-sentence token.
  explicit VocabTrie(const Tokenizer& tokenizer);
  // bytes[id] spells token id; empty = never inside constrained text.
  VocabTrie(std::vector<std::string> bytes, int32_t eos_id);

  int32_t vocab_size() const { return vocab_size_; }
  int32_t eos_id() const { return eos_id_; }
  // Bytes of an ordinary token; empty for added tokens and unknown ids.
  std::string_view bytes(int32_t id) const { return bytes_[size_t(id)]; }
  // Every ordinary token.
  const Trie& all() const { return all_; }
  // Tokens that are not string-neutral (see neutral()).
  const Trie& non_neutral() const { return non_neutral_; }
  // String-neutral tokens: complete UTF-8 with no `"`, `\`, control character or `<`. Inside a
  // JSON string, between characters, each of them is taken and leaves the automaton where it
  // was; so it does inside a DSML parameter value, whose closing tag starts with `<`
  // (text/dsml_matcher.h).
  const TokenBits& neutral() const { return neutral_; }
  size_t words() const { return neutral_.size(); }

 private:
  static Trie build(std::vector<std::pair<std::string_view, int32_t>> tokens);

  int32_t vocab_size_ = 0;
  int32_t eos_id_ = -1;
  std::vector<std::string> bytes_;
  Trie all_, non_neutral_;
  TokenBits neutral_;
};

}  // namespace dsv4::text

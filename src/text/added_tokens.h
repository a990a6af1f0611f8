// Added tokens (spec §7.1, TOKENIZER-FACTS "Added and special tokens"): strings that become a
// single id wherever they occur in the input, before pre-tokenization. Matching follows HF
// tokenizers: first the tokens with normalized=false split the text (leftmost-longest), then
// the tokens with normalized=true split the remaining stretches (leftmost-longest). The
// normalizer is a no-op for this family, so both passes look at the raw text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4::text {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
};

// Byte trie over a set of token strings with leftmost-longest search.
class TokenTrie {
 public:
  void insert(std::string_view s, int32_t id);
  bool empty() const { return nodes_.size() <= 1; }
  // Finds the leftmost position >= from where some token starts, taking the longest token
  // there. Returns false when none occurs. On success sets start, length and id.
  bool find(std::string_view text, size_t from, size_t& start, size_t& length, int32_t& id) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t id = -1;
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);
  // Splits text into stretches; for each, on_text(stretch) or on_token(id) is called in order.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    split_with(raw_, text, [&](std::string_view gap) { split_with(normalized_, gap, on_text, on_token); }, on_token);
  }

 private:
  template <typename OnText, typename OnToken>
  static void split_with(const TokenTrie& trie, std::string_view text, OnText&& on_text, OnToken&& on_token) {
    if (trie.empty()) {
      if (!text.empty()) on_text(text);
      return;
    }
    size_t pos = 0, start = 0, len = 0;
    int32_t id = -1;
    while (pos < text.size() && trie.find(text, pos, start, len, id)) {
      if (start > pos) on_text(text.substr(pos, start - pos));
      on_token(id);
      pos = start + len;
    }
    if (pos < text.size()) on_text(text.substr(pos));
  }
  TokenTrie raw_, normalized_;
};

}  // namespace dsv4::text

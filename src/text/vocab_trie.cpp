#include "text/vocab_trie.h"

#include <algorithm>
#include <deque>
#include <tuple>

#include "text/chat_tokens.h"
#include "text/utf8.h"

namespace dsv4::text {
namespace {

bool string_neutral(std::string_view s) {
  for (char c : s)
    if (uint8_t(c) < 0x20 || c == '"' || c == '\\' || c == '<') return false;
  return utf8_is_valid(s);
}

}  // namespace

namespace {

std::vector<std::string> ordinary_token_bytes(const Tokenizer& tokenizer) {
  std::vector<std::string> bytes(size_t(tokenizer.vocab_size()));
  std::vector<bool> added(bytes.size(), false);
  for (const AddedToken& t : tokenizer.added_tokens())
    if (t.id >= 0 && size_t(t.id) < bytes.size()) added[size_t(t.id)] = true;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    auto b = tokenizer.token_bytes(id);
    if (!added[size_t(id)] && b) bytes[size_t(id)] = std::string(*b);
  }
  return bytes;
}

}  // namespace

VocabTrie::VocabTrie(const Tokenizer& tokenizer)
    : VocabTrie(ordinary_token_bytes(tokenizer), tokenizer.token_id(chat::kEos).value_or(-1)) {}

VocabTrie::VocabTrie(std::vector<std::string> bytes, int32_t eos_id)
    : vocab_size_(int32_t(bytes.size())), eos_id_(eos_id), bytes_(std::move(bytes)) {
  neutral_.assign((size_t(vocab_size_) + 63) / 64, 0);
  std::vector<std::pair<std::string_view, int32_t>> every, rest;
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const std::string_view b = bytes_[size_t(id)];
    if (b.empty()) continue;
    every.emplace_back(b, id);
    if (string_neutral(b)) set_token_bit(neutral_, id);
    else rest.emplace_back(b, id);
  }
  all_ = build(std::move(every));
  non_neutral_ = build(std::move(rest));
}

// Breadth first, so that the children of a node are contiguous.
VocabTrie::Trie VocabTrie::build(std::vector<std::pair<std::string_view, int32_t>> tokens) {
  std::sort(tokens.begin(), tokens.end());
  Trie t;
  t.nodes.emplace_back();
  struct Pending {
    uint32_t node, lo, hi, depth;
  };
  std::deque<Pending> queue = {{0, 0, uint32_t(tokens.size()), 0}};
  while (!queue.empty()) {
    const Pending p = queue.front();
    queue.pop_front();
    uint32_t i = p.lo;
    // Tokens that end here sort before the longer ones sharing this prefix.
    t.nodes[p.node].token_begin = uint32_t(t.ids.size());
    for (; i < p.hi && tokens[i].first.size() == p.depth; ++i) t.ids.push_back(tokens[i].second);
    t.nodes[p.node].token_end = uint32_t(t.ids.size());
    t.nodes[p.node].first_child = uint32_t(t.nodes.size());
    while (i < p.hi) {
      const uint8_t b = uint8_t(tokens[i].first[p.depth]);
      uint32_t j = i;
      while (j < p.hi && uint8_t(tokens[j].first[p.depth]) == b) ++j;
      Node child;
      child.byte = b;
      t.nodes.push_back(child);
      t.nodes[p.node].child_count += 1;
      queue.push_back({uint32_t(t.nodes.size() - 1), i, j, p.depth + 1});
      i = j;
    }
  }
  return t;
}

}  // namespace dsv4::text

#include "text/added_tokens.h"

#include <algorithm>
#include <cstring>

namespace dsv4::text {

int32_t TokenTrie::child(int32_t node, uint8_t b) const {
  const auto& ch = nodes_[node].children;
  auto it = std::lower_bound(ch.begin(), ch.end(), b, [](const auto& p, uint8_t v) { return p.first < v; });
  return (it != ch.end() && it->first == b) ? it->second : -1;
}

void TokenTrie::insert(std::string_view s, int32_t id) {
  if (s.empty()) return;
  first_byte_[static_cast<uint8_t>(s[0])] = true;
  int32_t node = 0;
  for (char c : s) {
    const auto b = static_cast<uint8_t>(c);
    int32_t nx = child(node, b);
    if (nx < 0) {
      nx = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{});
      auto& ch = nodes_[node].children;
      auto it = std::lower_bound(ch.begin(), ch.end(), b, [](const auto& p, uint8_t v) { return p.first < v; });
      ch.insert(it, {b, nx});
    }
    node = nx;
  }
  // If the same string is listed twice, the first entry wins.
  if (nodes_[node].id < 0) nodes_[node].id = id;
}

bool TokenTrie::find(std::string_view text, size_t from, size_t& start, size_t& length, int32_t& id) const {
  const size_t n = text.size();
  for (size_t p = from; p < n; ++p) {
    if (!first_byte_[static_cast<uint8_t>(text[p])]) continue;
    int32_t node = 0, best_id = -1;
    size_t best_len = 0;
    for (size_t q = p; q < n; ++q) {
      node = child(node, static_cast<uint8_t>(text[q]));
      if (node < 0) break;
      if (nodes_[node].id >= 0) {
        best_id = nodes_[node].id;
        best_len = q - p + 1;
      }
    }
    if (best_id >= 0) {
      start = p;
      length = best_len;
      id = best_id;
      return true;
    }
  }
  return false;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
  for (const auto& t : tokens) (t.normalized ? normalized_ : raw_).insert(t.content, t.id);
}

}  // namespace dsv4::text

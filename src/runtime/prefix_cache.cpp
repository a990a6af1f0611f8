#include "runtime/prefix_cache.h"

#include <algorithm>

namespace dsv4::runtime {

namespace {

// How many leading tokens of `edge` equal those of `rest`.
size_t common_length(const std::vector<int32_t>& edge, std::span<const int32_t> rest) {
  const size_t n = std::min(edge.size(), rest.size());
  return size_t(std::mismatch(edge.begin(), edge.begin() + ptrdiff_t(n), rest.begin()).first - edge.begin());
}

}  // namespace

PrefixCache::Hit PrefixCache::find(std::span<const int32_t> tokens, int64_t max_depth) {
  Node* best = nullptr;
  int64_t best_depth = 0;
  Node* n = &root_;
  size_t depth = 0;
  while (depth < tokens.size()) {
    auto it = n->children.find(tokens[depth]);
    if (it == n->children.end()) break;
    Node* child = it->second.get();
    if (common_length(child->edge, tokens.subspan(depth)) < child->edge.size()) break;
    depth += child->edge.size();
    if (int64_t(depth) > max_depth) break;
    n = child;
    if (n->seq) {
      best = n;
      best_depth = int64_t(depth);
    }
  }
  if (best == nullptr) return {};
  touch(best);
  return {best->seq, best_depth};
}

bool PrefixCache::contains(std::span<const int32_t> tokens) const {
  const Node* n = &root_;
  size_t depth = 0;
  while (depth < tokens.size()) {
    auto it = n->children.find(tokens[depth]);
    if (it == n->children.end()) return false;
    const Node* child = it->second.get();
    if (common_length(child->edge, tokens.subspan(depth)) < child->edge.size()) return false;
    depth += child->edge.size();
    n = child;
  }
  return n != &root_ && n->seq != nullptr;
}

void PrefixCache::insert(std::span<const int32_t> tokens, std::shared_ptr<const Sequence> seq) {
  DSV4_CHECK(!tokens.empty() && seq && seq->position() == int64_t(tokens.size()));
  const size_t bytes = seq->memory_bytes();
  if (bytes > max_bytes_) return;
  Node* n = &root_;
  size_t depth = 0;
  while (depth < tokens.size()) {
    const std::span<const int32_t> rest = tokens.subspan(depth);
    auto it = n->children.find(rest[0]);
    if (it == n->children.end()) {
      auto leaf = std::make_unique<Node>();
      leaf->edge.assign(rest.begin(), rest.end());
      leaf->parent = n;
      n = (n->children[rest[0]] = std::move(leaf)).get();
      break;
    }
    Node* child = it->second.get();
    const size_t c = common_length(child->edge, rest);
    if (c < child->edge.size()) {
      // Split the edge: a new node at the divergence (or at the end of `tokens`) takes the
      // common part, and the old child hangs below it with the rest of its edge.
      auto mid = std::make_unique<Node>();
      mid->edge.assign(child->edge.begin(), child->edge.begin() + ptrdiff_t(c));
      mid->parent = n;
      std::unique_ptr<Node> old = std::move(it->second);
      old->edge.erase(old->edge.begin(), old->edge.begin() + ptrdiff_t(c));
      old->parent = mid.get();
      mid->children[old->edge[0]] = std::move(old);
      it->second = std::move(mid);
      child = it->second.get();
    }
    n = child;
    depth += c;
  }
  if (n->seq) {
    touch(n);
    return;
  }
  n->seq = std::move(seq);
  n->bytes = bytes;
  lru_.push_front(n);
  n->lru_it = lru_.begin();
  bytes_ += bytes;
  while (bytes_ > max_bytes_) evict_one();
}

void PrefixCache::touch(Node* n) { lru_.splice(lru_.begin(), lru_, n->lru_it); }

void PrefixCache::evict_one() {
  Node* n = lru_.back();
  lru_.pop_back();
  bytes_ -= n->bytes;
  n->seq.reset();
  n->bytes = 0;
  prune(n);
}

void PrefixCache::prune(Node* n) {
  if (n == &root_ || n->seq || n->children.size() >= 2) return;
  Node* parent = n->parent;
  auto& slot = parent->children.at(n->edge[0]);
  if (n->children.empty()) {
    parent->children.erase(n->edge[0]);   // destroys n
    prune(parent);
    return;
  }
  // One child: it takes n's place, its edge extended by n's.
  std::unique_ptr<Node> child = std::move(n->children.begin()->second);
  child->edge.insert(child->edge.begin(), n->edge.begin(), n->edge.end());
  child->parent = parent;
  slot = std::move(child);   // destroys n
}

size_t PrefixCache::nodes() const {
  size_t count = 0;
  std::vector<const Node*> stack = {&root_};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    for (const auto& [t, c] : n->children) {
      ++count;
      stack.push_back(c.get());
    }
  }
  return count;
}

}  // namespace dsv4::runtime

// The scheduler's in-memory prefix cache: a radix tree over prompt token ids whose nodes may
// hold a snapshot of a sequence's state after exactly the tokens on the path to them. A new
// request resumes from the deepest snapshot whose tokens are a prefix of its prompt, so a prompt
// that diverges from an earlier one (an agent that rewrites its last turn) still skips everything
// up to the last snapshot before the divergence. Resuming is exact: the forward pass gives the
// same state whatever the chunking (spec §5.13), so a clone of the snapshot continues as a fresh
// prefill would.
//
// Snapshots are evicted least recently used first when their bytes (Sequence::memory_bytes)
// exceed the cap; a node left without a snapshot and with fewer than two children is merged away,
// so the tree never holds more nodes than twice the snapshots.
//
// Thread-safety: none; the scheduler's inference thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "runtime/engine.h"

namespace dsv4::runtime {

class PrefixCache {
 public:
  explicit PrefixCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  struct Hit {
    std::shared_ptr<const Sequence> seq;  // null: no snapshot matches
    int64_t depth = 0;                    // tokens the snapshot has consumed
  };
  // The deepest snapshot whose tokens are a prefix of `tokens` and that is at most `max_depth`
  // tokens deep; it becomes the most recently used.
  Hit find(std::span<const int32_t> tokens, int64_t max_depth);
  // Whether a snapshot is held for exactly `tokens`.
  bool contains(std::span<const int32_t> tokens) const;
  // Keeps `seq` as the state after `tokens` (a snapshot already held there is kept instead and
  // made the most recently used), then evicts down to the cap. A snapshot larger than the cap
  // is not kept. REQUIRES: seq->position() == tokens.size() > 0.
  void insert(std::span<const int32_t> tokens, std::shared_ptr<const Sequence> seq);

  size_t bytes() const { return bytes_; }
  size_t snapshots() const { return lru_.size(); }
  size_t nodes() const;   // the root excluded (tests: merging keeps the tree small)

 private:
  struct Node {
    std::vector<int32_t> edge;             // tokens from the parent to this node
    Node* parent = nullptr;
    std::map<int32_t, std::unique_ptr<Node>> children;  // by the first token of their edge
    std::shared_ptr<const Sequence> seq;   // the snapshot at this depth, if any
    size_t bytes = 0;
    std::list<Node*>::iterator lru_it;     // valid while seq is set
  };
  void touch(Node* n);
  void evict_one();
  void prune(Node* n);   // after n lost its snapshot: remove or merge it if it is now useless

  const size_t max_bytes_;
  Node root_;
  std::list<Node*> lru_;   // nodes with a snapshot, front = most recently used
  size_t bytes_ = 0;
};

}  // namespace dsv4::runtime

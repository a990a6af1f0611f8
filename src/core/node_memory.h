// Anonymous memory whose pages live on one NUMA node (issue #17, --numa): a rank's private copy
// of the replicated weights, so that its threads, bound to that node, never read them across the
// socket link. Aligned to 2 MiB and advised for 2 MiB pages (core/huge_pages.h) like the weight
// mappings it stands in for.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace dsv4 {

class NodeMemory {
 public:
  // `bytes` (rounded up to whole 2 MiB pages) bound to `node` (mbind MPOL_BIND, before any page
  // is touched: the kernel then allocates every page there, or fails the touch rather than fall
  // back to another node). The pages are allocated when first written.
  // Errors: the address space cannot be reserved, or the kernel refuses the binding (a node that
  // does not exist or has no memory; a container that forbids mbind without CAP_SYS_NICE).
  static Result<NodeMemory> allocate(size_t bytes, int node);
  NodeMemory() = default;
  ~NodeMemory();
  NodeMemory(NodeMemory&& o) noexcept;
  NodeMemory& operator=(NodeMemory&& o) noexcept;
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }   // the mapping, whole 2 MiB pages
  int node() const { return node_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int node_ = -1;
};

}  // namespace dsv4

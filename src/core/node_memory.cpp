#include "core/node_memory.h"

#include <numaif.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/huge_pages.h"

namespace dsv4 {

Result<NodeMemory> NodeMemory::allocate(size_t bytes, int node) {
  if (node < 0) return Status::invalid_argument("NUMA node " + std::to_string(node));
  const size_t size = (std::max<size_t>(bytes, 1) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  // Reserve 2 MiB more than needed and keep the 2 MiB-aligned part, so every 2 MiB of the copy can
  // be one page.
  const size_t span = size + kHugePageBytes;
  void* r = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return Status::resource_exhausted(std::string("mmap of the node copy: ") + std::strerror(errno));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(r);
  const uintptr_t at = (lo + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  if (at > lo) ::munmap(r, at - lo);
  if (lo + span > at + size) ::munmap(reinterpret_cast<void*>(at + size), lo + span - (at + size));
  void* p = reinterpret_cast<void*>(at);
  advise_huge_pages(p, size);
  // The kernel reads maxnode bits of the mask and, historically, ignores the last one: pass one more.
  std::vector<unsigned long> mask(size_t(node) / (8 * sizeof(unsigned long)) + 1, 0);
  mask[size_t(node) / (8 * sizeof(unsigned long))] |= 1UL << (size_t(node) % (8 * sizeof(unsigned long)));
  if (::mbind(p, size, MPOL_BIND, mask.data(), mask.size() * 8 * sizeof(unsigned long) + 1, MPOL_MF_STRICT) != 0) {
    const int err = errno;
    ::munmap(p, size);
    return Status::io_error("cannot bind memory to NUMA node " + std::to_string(node) + " (mbind): " + std::strerror(err));
  }
  NodeMemory m;
  m.data_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  m.node_ = node;
  return m;
}

NodeMemory::~NodeMemory() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

NodeMemory::NodeMemory(NodeMemory&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), node_(std::exchange(o.node_, -1)) {}

NodeMemory& NodeMemory::operator=(NodeMemory&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    node_ = std::exchange(o.node_, -1);
  }
  return *this;
}

}  // namespace dsv4

#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

namespace dsv4 {

void advise_huge_pages(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  (void)::madvise(p, bytes, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

void* alloc_huge_pages(size_t bytes) {
  const size_t n = bytes == 0 ? kHugePageBytes : (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = std::aligned_alloc(kHugePageBytes, n);
  if (p != nullptr) advise_huge_pages(p, n);
  return p;
}

}  // namespace dsv4

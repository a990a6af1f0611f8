// 2 MiB pages for large, long-lived buffers: the weight mappings (io::MappedFile), the forward
// pass's arena blocks (model::Arena) and the bandwidth probe's buffer. Decode streams gigabytes
// per token and prefill activations run to hundreds of MiB; on 4 KiB pages their TLB misses cost
// a measurable share of the time (bench/README.md, session 6).
#pragma once

#include <cstddef>

namespace dsv4 {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// Advises the kernel to back [p, p + bytes) with 2 MiB pages (MADV_HUGEPAGE). Advice only: a
// kernel without transparent huge pages, or one that refuses, keeps 4 KiB pages.
void advise_huge_pages(void* p, size_t bytes);

// bytes rounded up to whole 2 MiB pages, 2 MiB-aligned and advised as above; nullptr if the
// allocation fails. Free with std::free.
void* alloc_huge_pages(size_t bytes);

}  // namespace dsv4

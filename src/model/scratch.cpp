#include "model/scratch.h"

#include <omp.h>

#include <algorithm>

#include "core/huge_pages.h"
#include "core/status.h"

namespace dsv4::model {

namespace {
constexpr size_t kAlign = 64;   // one cache line: SIMD loads of a row never straddle two
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Arena::Block Arena::new_block(size_t bytes) {
  // Blocks of 2 MiB or more on 2 MiB pages where the kernel allows (advice only): a prefill's
  // activations run to hundreds of MiB (q alone is tokens x 64 x 512 floats), and on 4 KiB pages
  // their TLB misses cost flash2's 512-token prefill a fifth of its speed (3 alternating rounds:
  // 126-147 -> 159-190 tok/s).
  Block b(static_cast<std::byte*>(bytes >= kHugePageBytes
                                      ? alloc_huge_pages(bytes)
                                      : std::aligned_alloc(kAlign, round_up(std::max<size_t>(bytes, kAlign)))));
  DSV4_CHECK(b != nullptr);
  return b;
}

void* Arena::alloc_bytes(size_t bytes) {
  bytes = round_up(bytes);
  if (top_ + bytes <= cap_) {
    void* p = block_.get() + top_;
    top_ += bytes;
    peak_ = std::max(peak_, top_ + spilled_);
    return p;
  }
  // Does not fit: an overflow block for this request; reset() folds the peak into the block.
  overflow_.push_back(new_block(bytes));
  spilled_ += bytes;
  peak_ = std::max(peak_, top_ + spilled_);
  return overflow_.back().get();
}

void Arena::reserve(size_t bytes) {
  if (bytes <= cap_) return;
  DSV4_CHECK(top_ == 0 && overflow_.empty());
  cap_ = round_up(bytes);
  block_ = new_block(cap_);
}

void Arena::reset() {
  top_ = 0;
  if (!overflow_.empty()) {
    overflow_.clear();
    // Headroom of 1/4: a context that keeps growing (indexer scores, HCA entry lists) then
    // reallocates O(log n) times rather than at every step.
    const size_t want = peak_ + peak_ / 4;
    cap_ = round_up(want);
    block_ = new_block(cap_);
  }
  spilled_ = 0;
  peak_ = 0;
}

void Scratch::begin_step() {
  main.reset();
  const size_t n = size_t(std::max(1, omp_get_max_threads()));
  if (threads.size() < n) threads.resize(n);
  for (Arena& a : threads) a.reset();
}

}  // namespace dsv4::model

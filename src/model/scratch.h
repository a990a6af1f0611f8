// Temporaries of the forward pass, reused from step to step so that a steady-state decode step
// allocates nothing (STYLE §3 "Allocation in the decode loop": per-token jitter, allocator
// contention between threads, page faults next to the weight mapping).
//
// An Arena is a bump allocator over one block. A step takes what it needs and gives it back in
// LIFO order (ArenaScope); if a step asks for more than the block holds, the extra comes from
// overflow blocks, and the next reset() replaces the block by one large enough for that peak.
// So only steps that set a new high-water mark allocate: the first ones, and a longer context
// or a larger batch than any before.
//
// Thread-safety: an Arena belongs to one thread at a time. Scratch holds one for the calling
// (inference) thread and one per OpenMP thread for parallel regions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <vector>

#include "model/batch.h"
#include "model/step_times.h"

namespace dsv4::model {

class BlockProbe;

class Arena {
 public:
  Arena() = default;
  Arena(Arena&&) noexcept = default;
  Arena& operator=(Arena&&) noexcept = default;

  // n uninitialised elements of a trivial type, 64-byte aligned; valid until the enclosing
  // ArenaScope ends (or reset()).
  template <typename T>
  T* alloc(int64_t n) {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
    return static_cast<T*>(alloc_bytes(size_t(n < 0 ? 0 : n) * sizeof(T)));
  }
  void* alloc_bytes(size_t bytes);

  // Frees everything; grows the block to the last peak if that did not fit. REQUIRES: nothing
  // taken from this arena is still in use.
  void reset();
  // Makes the block hold at least `bytes` (allocates only if it does not yet).
  void reserve(size_t bytes);

  size_t capacity() const { return cap_; }
  size_t peak() const { return peak_; }

 private:
  friend class ArenaScope;
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  using Block = std::unique_ptr<std::byte, FreeDeleter>;
  static Block new_block(size_t bytes);

  Block block_;
  size_t cap_ = 0, top_ = 0;
  size_t spilled_ = 0;          // bytes handed out from overflow blocks since the last reset
  size_t peak_ = 0;             // largest top_ + spilled_ since the last reset
  std::vector<Block> overflow_;
};

// Gives back on destruction everything taken from the arena after construction.
class ArenaScope {
 public:
  explicit ArenaScope(Arena& a) : a_(a), top_(a.top_) {}
  ~ArenaScope() { a_.top_ = top_; }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena& a_;
  size_t top_;
};

struct Scratch {
  Arena main;                   // the inference thread (outside parallel regions)
  std::vector<Arena> threads;   // [omp thread id], inside parallel regions
  StepTimes* times = nullptr;   // when set, run_block and head_logits add their wall time
  BlockProbe* probe = nullptr;  // when set, the watched block records its intermediates (block_probe.h)
  // The rows of a pass that builds its own batch rather than getting one (the DSpark draft block,
  // model/dspark.h; the MTP block), kept here so that a warm pass allocates nothing.
  Batch own_batch;

  // Call at the start of a step, outside any parallel region: resets every arena and makes sure
  // there is one per OpenMP thread the step may use.
  void begin_step();
  Arena& thread(int id) { return threads[size_t(id)]; }
};

}  // namespace dsv4::model

// matmul(): picks the instruction-set variant once (CPU feature detection, a table of function
// pointers) and splits the rows evenly over the OpenMP threads. Every variant sums in the
// canonical order of matmul.h, so the split, n and the variant never change a result.
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <memory>

#include "core/status.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels {

namespace {

MatmulImpl detect_best_impl() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return MatmulImpl::avx512;
  // F16C (vcvtph2ps) ships on every AVX2 CPU (Haswell, Zen and later).
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MatmulImpl::avx2;
  return MatmulImpl::generic;
}

MatmulImpl best_impl() {
  static const MatmulImpl best = detect_best_impl();
  return best;
}

// -1: not chosen yet (use best_impl()).
std::atomic<int> g_selected{-1};

const detail::MatmulIsa& isa_for(MatmulImpl impl) {
  switch (impl) {
    case MatmulImpl::avx512: return detail::matmul_isa_avx512();
    case MatmulImpl::avx2: return detail::matmul_isa_avx2();
    default: return detail::matmul_isa_generic();
  }
}

// Per-thread scratch, grown on first use to the largest size asked for and then reused: the
// decode loop allocates nothing once every shape has been seen.
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
float* thread_scratch(int64_t floats) {
  thread_local std::unique_ptr<float, FreeDeleter> buf;
  thread_local int64_t cap = 0;
  if (floats > cap) {
    const size_t bytes = (size_t(floats) * sizeof(float) + 63) / 64 * 64;
    buf.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    DSV4_CHECK(buf != nullptr);
    cap = floats;
  }
  return buf.get();
}

// Below this many multiply-adds the fork/join of the thread pool costs more than it saves.
constexpr int64_t kMinParallelMacs = int64_t(1) << 16;

}  // namespace

const char* matmul_impl_name(MatmulImpl impl) {
  switch (impl) {
    case MatmulImpl::reference: return "reference";
    case MatmulImpl::generic: return "generic";
    case MatmulImpl::avx2: return "avx2";
    case MatmulImpl::avx512: return "avx512";
  }
  return "?";
}

bool matmul_impl_supported(MatmulImpl impl) {
  switch (impl) {
    case MatmulImpl::reference:
    case MatmulImpl::generic: return true;
    case MatmulImpl::avx2: return best_impl() == MatmulImpl::avx2 || best_impl() == MatmulImpl::avx512;
    case MatmulImpl::avx512: return best_impl() == MatmulImpl::avx512;
  }
  return false;
}

MatmulImpl active_matmul_impl() {
  const int s = g_selected.load(std::memory_order_relaxed);
  return s < 0 ? best_impl() : MatmulImpl(s);
}

bool select_matmul_impl(MatmulImpl impl) {
  if (!matmul_impl_supported(impl)) return false;
  g_selected.store(int(impl), std::memory_order_relaxed);
  return true;
}

void matmul(const WeightView& w, const float* x, int64_t n, float* y) {
  if (n <= 0 || w.rows <= 0) return;
  const MatmulImpl impl = active_matmul_impl();
  if (impl == MatmulImpl::reference) return matmul_ref(w, x, n, y);
  const detail::MatmulIsa& isa =
      detail::matmul_fast_shape_ok(w) ? isa_for(impl) : detail::matmul_isa_generic();
  const int64_t R = w.rows, scratch_floats = isa.scratch_floats(w.cols);
  const bool parallel = R * w.cols * n >= kMinParallelMacs;
#pragma omp parallel if (parallel)
  {
    const int64_t nth = omp_get_num_threads(), id = omp_get_thread_num();
    // Even split in multiples of 4 rows (the GEMM row tile).
    const int64_t per = ((R + nth - 1) / nth + 3) / 4 * 4;
    const int64_t r0 = id * per < R ? id * per : R;
    const int64_t r1 = r0 + per < R ? r0 + per : R;
    if (r0 < r1) isa.rows(w, x, n, y, r0, r1, thread_scratch(scratch_floats));
  }
}

}  // namespace dsv4::kernels

// The one way the engine enters an OpenMP parallel region.
//
// libgomp keeps the team of a multi-threaded region for the next one, but allocates (and frees)
// a fresh team for every single-threaded region, including `#pragma omp parallel if (false)`.
// A decode step enters dozens of regions, many of them too small to split, so those must not
// enter a region at all for the step to stay allocation-free (STYLE §3): this runs them on the
// calling thread instead.
#pragma once

#include <omp.h>

#include <atomic>
#include <cstdint>

namespace dsv4 {

// Calls f(thread_id, thread_count) on every thread of a parallel region when `parallel` and the
// pool has more than one thread; otherwise f(0, 1) on the calling thread.
template <typename F>
void run_parallel(bool parallel, F&& f) {
  if (!parallel || omp_in_parallel() || omp_get_max_threads() == 1) {
    f(int64_t(0), int64_t(1));
    return;
  }
#pragma omp parallel
  f(int64_t(omp_get_thread_num()), int64_t(omp_get_num_threads()));
}

// f(i) for i in [0, n): contiguous equal shares per thread (as schedule(static)).
template <typename F>
void parallel_for_static(bool parallel, int64_t n, F&& f) {
  run_parallel(parallel && n > 1, [&](int64_t id, int64_t nth) {
    for (int64_t i = n * id / nth; i < n * (id + 1) / nth; ++i) f(i, id);
  });
}

// f(i, thread_id) for i in [0, n), handed out one at a time (as schedule(dynamic, 1)): for
// iterations of uneven cost, such as attention queries at different positions.
template <typename F>
void parallel_for_dynamic(bool parallel, int64_t n, F&& f) {
  std::atomic<int64_t> next{0};
  run_parallel(parallel && n > 1, [&](int64_t id, int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) f(i, id);
  });
}

}  // namespace dsv4

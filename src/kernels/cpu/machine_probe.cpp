#include "kernels/cpu/machine_probe.h"

#include <omp.h>

#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/huge_pages.h"
#include "core/status.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels {

namespace {

double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const detail::MatmulIsa& active_isa() {
  const MatmulImpl impl = active_matmul_impl();
  return impl == MatmulImpl::avx512 ? detail::matmul_isa_avx512()
         : impl == MatmulImpl::avx2 ? detail::matmul_isa_avx2()
                                    : detail::matmul_isa_generic();
}
}  // namespace

double measure_read_bandwidth_gbps() {
  const int64_t bytes = int64_t(512) << 20, floats = bytes / 4;
  // On 2 MiB pages, as the weight mappings are (io::MappedFile), so that the bound is never
  // lowered by TLB misses the weights do not have (on the 2-core VM measured, a sequential read
  // ran at the same rate on both page sizes).
  float* buf = static_cast<float*>(alloc_huge_pages(size_t(bytes)));
  DSV4_CHECK(buf != nullptr);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < floats; ++i) buf[i] = 1.0f;  // first touch by the reading thread
  const detail::MatmulIsa& isa = active_isa();
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int pass = 0; pass < 4; ++pass) {
    float total = 0.0f;
    const double t0 = now_s();
#pragma omp parallel reduction(+ : total)
    {
      const int64_t nth = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t per = (floats / 64 + nth - 1) / nth * 64;   // whole 256-byte steps
      const int64_t f0 = id * per < floats ? id * per : floats;
      const int64_t f1 = f0 + per < floats ? f0 + per : floats;
      total += isa.read_probe(buf + f0, f1 - f0);
    }
    const double dt = now_s() - t0;
    sink = sink + total;
    const double gbps = double(bytes) / dt / 1e9;
    if (gbps > best) best = gbps;
  }
  std::free(buf);
  return best;
}

double measure_fma_peak_gflops() {
  const MatmulImpl impl = active_matmul_impl();
  const detail::MatmulIsa& isa = active_isa();
  const int64_t iters = impl == MatmulImpl::avx512 || impl == MatmulImpl::avx2 ? 20'000'000 : 2'000'000;
  // Each thread's rate over its own CPU time, summed: the peak of the cores when they are ours,
  // which time-slicing by other processes on a shared machine does not lower.
  double best = 0.0;
  for (int pass = 0; pass < 2; ++pass) {
    double rate = 0.0;
#pragma omp parallel reduction(+ : rate)
    {
      const double t0 = thread_cpu_s();
      const double flops = isa.fma_probe(iters, 0.9999999f);
      rate += flops / (thread_cpu_s() - t0) / 1e9;
    }
    if (rate > best) best = rate;
  }
  return best;
}

}  // namespace dsv4::kernels

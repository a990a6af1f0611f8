// Measurements of the machine the kernels run on, used to state benchmark figures as a fraction
// of what the hardware can do (dsv4 bench, bench/kernels/cpu/matmul_bench.cpp).
#pragma once

namespace dsv4::kernels {

// STREAM-style read bandwidth in GB/s (1e9 bytes/s): all OpenMP threads read disjoint parts of a
// 512 MiB buffer (far above any last-level cache) with the widest loads of the active matmul
// implementation and its prefetch distance; best of 4 passes. The bound a bandwidth-limited
// kernel is measured against. Takes ~1 s and allocates the buffer for the duration of the call.
double measure_read_bandwidth_gbps();

// Peak f32 FMA throughput in GFLOP/s (2 flops per lane per FMA) of the matmul implementation in
// use (active_matmul_impl()), all OpenMP threads running independent FMA chains. ~0.2 s.
double measure_fma_peak_gflops();

}  // namespace dsv4::kernels

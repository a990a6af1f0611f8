// matmul throughput on Flash-shaped weights: GB/s of weight bytes for decode (n = 1, weights
// cold in DRAM: each iteration reads a different copy, >= 256 MiB in rotation) as a fraction of
// the measured read bandwidth, and GFLOP/s for prefill (n = 512) as a fraction of the measured
// FMA peak. "before_*" runs the previous simple kernel (row dequantised to a buffer, 16-lane dot)
// for comparison. Shared machines: run one at a time, short, and quote the load next to figures.
//
//   build/matmul_bench [--benchmark_filter=Matvec] [--benchmark_min_time=0.5]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/machine_probe.h"
#include "kernels/cpu/matmul.h"

namespace dsv4::kernels {
namespace {

double g_read_gbps = 0.0, g_peak_gflops = 0.0;

// The kernel before issue #5, kept verbatim in behaviour as the "before" figure.
void matmul_before(const WeightView& w, const float* x, int64_t n, float* y) {
  const int64_t R = w.rows, K = w.cols;
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      dequant_row(w, r, row.data());
      for (int64_t t = 0; t < n; ++t) {
        const float* a = row.data();
        const float* b = x + t * K;
        float lanes[16] = {0};
        int64_t k = 0;
        for (; k + 16 <= K; k += 16)
          for (int l = 0; l < 16; ++l) lanes[l] += a[k + l] * b[k + l];
        for (; k < K; ++k) lanes[k & 15] += a[k] * b[k];
        for (int h = 8; h >= 1; h /= 2)
          for (int l = 0; l < h; ++l) lanes[l] += lanes[l + h];
        y[t * R + r] = lanes[0];
      }
    }
  }
}

// Weight matrices with random valid codes; several copies so a rotation exceeds the caches.
struct Matrix {
  std::vector<uint8_t> data, scale;
  WeightView view;
};

uint64_t next_rand(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// 256 E4M3 codes of N(0, 64^2) samples at evenly spaced quantiles: a random byte picks one.
const std::vector<uint8_t>& fp8_normal_codes() {
  static const std::vector<uint8_t> codes = [] {
    std::vector<uint8_t> c(256);
    for (int i = 0; i < 256; ++i) {
      // Inverse normal CDF by bisection on erf: the quantile (i + 0.5) / 256.
      const double p = (i + 0.5) / 256.0;
      double lo = -8, hi = 8;
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
      }
      c[size_t(i)] = f32_to_e4m3(float(64.0 * lo));
    }
    return c;
  }();
  return codes;
}

std::unique_ptr<Matrix> make_matrix(DType dt, int64_t rows, int64_t cols, uint64_t seed) {
  auto m = std::make_unique<Matrix>();
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  const size_t bytes = size_t(dtype_bytes(dt, uint64_t(rows * cols)));
  size_t scales = 0;
  if (dt == DType::fp8_e4m3) scales = size_t(((rows + 127) / 128) * ((cols + 127) / 128));
  if (dt == DType::fp4_e2m1) scales = size_t(rows * cols / 32);
  m->data.resize(bytes);
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t v = next_rand(s);
    if (dt == DType::f32 || dt == DType::bf16) v &= 0x3fff3fff3fff3fffull;  // finite, |v| < 2
    if (dt == DType::fp8_e4m3) {
      // Codes spread like a real max-scaled block (io/synth.cpp): subnormal and zero codes rare.
      const std::vector<uint8_t>& codes = fp8_normal_codes();
      for (int b = 0; b < 8; ++b) v = (v & ~(uint64_t(0xFF) << (8 * b))) | uint64_t(codes[(v >> (8 * b)) & 0xFF]) << (8 * b);
    }
    std::memcpy(&m->data[i], &v, bytes - i < 8 ? bytes - i : 8);
  }
  m->scale.resize(scales);
  for (auto& e : m->scale) e = uint8_t(117 + next_rand(s) % 12);
  m->view = WeightView{dt, rows, cols, m->data.data(), m->scale.empty() ? nullptr : m->scale.data()};
  return m;
}

size_t stored_bytes(const Matrix& m) { return m.data.size() + m.scale.size(); }

struct MatrixSet {
  std::vector<std::unique_ptr<Matrix>> mats;
  size_t bytes_each = 0;
};

// `group` matrices are used per iteration (experts of one MoE layer); the set holds enough
// groups to rotate through at least 256 MiB when cold, or exactly one group otherwise.
const MatrixSet& matrix_set(DType dt, int64_t rows, int64_t cols, int group, bool cold) {
  static std::map<std::string, MatrixSet> cache;
  const std::string key = std::string(dtype_name(dt)) + std::to_string(rows) + "x" +
                          std::to_string(cols) + "g" + std::to_string(group) + (cold ? "c" : "w");
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  cache.clear();  // one set alive at a time: keeps the benchmark's footprint near 256 MiB
  MatrixSet set;
  auto first = make_matrix(dt, rows, cols, 1);
  set.bytes_each = stored_bytes(*first);
  set.mats.push_back(std::move(first));
  const size_t want = cold ? (size_t(256) << 20) : 0;
  int64_t count = group;
  while (size_t(count) * set.bytes_each < want) count += group;
  for (int64_t i = 1; i < count; ++i) set.mats.push_back(make_matrix(dt, rows, cols, uint64_t(i + 1)));
  return cache.emplace(key, std::move(set)).first->second;
}

using MatmulFn = void (*)(const WeightView&, const float*, int64_t, float*);

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Decode: y = W x for `group` different matrices per iteration, weights cold.
void run_matvec(benchmark::State& state, MatmulFn fn, DType dt, int64_t rows, int64_t cols, int group,
                bool cold = true) {
  const MatrixSet& set = matrix_set(dt, rows, cols, group, cold);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  size_t next = 0;
  int64_t calls = 0;
  const double t0 = seconds();
  for (auto _ : state) {
    for (int g = 0; g < group; ++g) {
      fn(set.mats[next]->view, x.data(), 1, y.data());
      next = (next + 1) % set.mats.size();
      ++calls;
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double gbps = double(calls) * double(set.bytes_each) / (seconds() - t0) / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["%bw"] = 100.0 * gbps / g_read_gbps;
}

// Prefill: Y = X W^T for n tokens (weights warm: a GEMM is compute-bound).
void run_gemm(benchmark::State& state, MatmulFn fn, DType dt, int64_t rows, int64_t cols, int64_t n) {
  const MatrixSet& set = matrix_set(dt, rows, cols, 1, false);
  std::vector<float> x(size_t(n * cols)), y(size_t(n * rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 17) - 8) * 0.125f;
  int64_t calls = 0;
  const double t0 = seconds(), c0 = process_cpu_seconds();
  for (auto _ : state) {
    fn(set.mats[0]->view, x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    ++calls;
  }
  const double flops = 2.0 * double(rows * cols * n) * double(calls);
  // GFLOP/s on the wall clock, and over the process CPU time divided by the thread count: what
  // the threads achieve while they hold a core (the machine is shared; spin-waits count as busy,
  // so this errs low). %peak compares the latter with the FMA peak measured the same way.
  const double cpu_gflops = flops / ((process_cpu_seconds() - c0) / omp_get_max_threads()) / 1e9;
  state.counters["GFLOP/s"] = flops / (seconds() - t0) / 1e9;
  state.counters["GFLOP/s_cpu"] = cpu_gflops;
  state.counters["%peak"] = 100.0 * cpu_gflops / g_peak_gflops;
}

// Decode of the routed experts of one MoE layer (Flash: 6 experts, w1/w3 [2048, 4096] and
// w2 [4096, 2048] FP4): either one matmul() per matrix or two matmul_many() calls (w1+w3 of all
// experts, then w2), as the model would issue them. Layers rotate so weights stay cold.
void run_moe_decode(benchmark::State& state, bool many) {
  constexpr int kExperts = 6, kLayers = 4;
  static std::vector<std::unique_ptr<Matrix>> up, down;   // [layer][expert][w1, w3] and [layer][expert]
  if (up.empty()) {
    for (int i = 0; i < kLayers * kExperts * 2; ++i) up.push_back(make_matrix(DType::fp4_e2m1, 2048, 4096, 1000 + i));
    for (int i = 0; i < kLayers * kExperts; ++i) down.push_back(make_matrix(DType::fp4_e2m1, 4096, 2048, 2000 + i));
  }
  const size_t layer_bytes = kExperts * (2 * stored_bytes(*up[0]) + stored_bytes(*down[0]));
  std::vector<float> x(4096, 0.25f), h(size_t(kExperts) * 2 * 2048), y(size_t(kExperts) * 4096);
  std::vector<MatmulJob> jobs_up(kExperts * 2), jobs_down(kExperts);
  int layer = 0;
  int64_t layers = 0;
  const double t0 = seconds();
  for (auto _ : state) {
    for (int e = 0; e < kExperts; ++e) {
      for (int m = 0; m < 2; ++m)
        jobs_up[size_t(2 * e + m)] = MatmulJob{up[size_t((layer * kExperts + e) * 2 + m)]->view, x.data(), 1,
                                               h.data() + (2 * e + m) * 2048};
      jobs_down[size_t(e)] = MatmulJob{down[size_t(layer * kExperts + e)]->view, h.data() + 2 * e * 2048, 1,
                                       y.data() + e * 4096};
    }
    if (many) {
      matmul_many(jobs_up.data(), int64_t(jobs_up.size()));
      matmul_many(jobs_down.data(), int64_t(jobs_down.size()));
    } else {
      for (const MatmulJob& j : jobs_up) matmul(j.w, j.x, j.n, j.y);
      for (const MatmulJob& j : jobs_down) matmul(j.w, j.x, j.n, j.y);
    }
    benchmark::DoNotOptimize(y.data());
    layer = (layer + 1) % kLayers;
    ++layers;
  }
  const double gbps = double(layers) * double(layer_bytes) / (seconds() - t0) / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["%bw"] = 100.0 * gbps / g_read_gbps;
}

struct Case {
  const char* name;
  DType dt;
  int64_t rows, cols;
  int group;
};
// Flash (spec §1): D 4096, q_lora 1024, 64 heads x 512, experts I = 2048, 6 routed per token.
const Case kMatvecCases[] = {
    {"fp8_4096x4096", DType::fp8_e4m3, 4096, 4096, 1},
    {"fp8_1024x4096", DType::fp8_e4m3, 1024, 4096, 1},
    {"fp8_32768x1024", DType::fp8_e4m3, 32768, 1024, 1},
    {"fp4_2048x4096_x6", DType::fp4_e2m1, 2048, 4096, 6},
    {"fp4_4096x2048_x6", DType::fp4_e2m1, 4096, 2048, 6},
    {"bf16_4096x4096", DType::bf16, 4096, 4096, 1},
};
const Case kGemmCases[] = {
    {"fp8_4096x4096", DType::fp8_e4m3, 4096, 4096, 1},
    {"fp8_32768x1024", DType::fp8_e4m3, 32768, 1024, 1},
    {"fp4_2048x4096", DType::fp4_e2m1, 2048, 4096, 1},
    {"fp4_4096x2048", DType::fp4_e2m1, 4096, 2048, 1},
    {"bf16_4096x4096", DType::bf16, 4096, 4096, 1},
};

void register_all() {
  for (const Case& c : kMatvecCases) {
    benchmark::RegisterBenchmark((std::string("Matvec/") + c.name).c_str(), [c](benchmark::State& s) {
      run_matvec(s, matmul, c.dt, c.rows, c.cols, c.group);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("Matvec_before/") + c.name).c_str(), [c](benchmark::State& s) {
      run_matvec(s, matmul_before, c.dt, c.rows, c.cols, c.group);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("MoeDecode/matmul_many", [](benchmark::State& s) { run_moe_decode(s, true); })
      ->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("MoeDecode/matmul_each", [](benchmark::State& s) { run_moe_decode(s, false); })
      ->UseRealTime()->Unit(benchmark::kMicrosecond);
  // Warm (L2-resident) single matrices: the kernel's decode+FMA rate without DRAM in the way,
  // i.e. how much headroom the inner loop has over the bandwidth bound (per thread: run with
  // OMP_NUM_THREADS=1 and read the CPU-time column on a busy machine).
  for (const Case& c : {Case{"fp8_256x1024", DType::fp8_e4m3, 256, 1024, 1},
                        Case{"fp4_256x2048", DType::fp4_e2m1, 256, 2048, 1},
                        Case{"bf16_128x1024", DType::bf16, 128, 1024, 1}}) {
    benchmark::RegisterBenchmark((std::string("MatvecWarm/") + c.name).c_str(), [c](benchmark::State& s) {
      run_matvec(s, matmul, c.dt, c.rows, c.cols, c.group, false);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  // A speculative verify chunk (6 positions, issue #14) through the FP8 projections, weights
  // warm: compute-bound on a few cores. On the BF16 dot product (the default where the CPU has
  // it) and on the FMA kernel; same bits.
  for (const Case& c : {kGemmCases[0], Case{"fp8_1024x4096", DType::fp8_e4m3, 1024, 4096, 1}}) {
    for (Fp4Dot d : {Fp4Dot::bf16, Fp4Dot::fma}) {
      const std::string name = std::string("Verify6/") + c.name + (d == Fp4Dot::bf16 ? "/bf16_dot" : "/fma");
      benchmark::RegisterBenchmark(name.c_str(), [c, d](benchmark::State& s) {
        const Fp4Dot was = active_fp4_dot();
        select_fp4_dot(d);
        run_gemm(s, matmul, c.dt, c.rows, c.cols, 6);
        select_fp4_dot(was);
      })->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  for (const Case& c : kGemmCases) {
    benchmark::RegisterBenchmark((std::string("Gemm512/") + c.name).c_str(), [c](benchmark::State& s) {
      run_gemm(s, matmul, c.dt, c.rows, c.cols, 512);
    })->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Gemm512_before/") + c.name).c_str(), [c](benchmark::State& s) {
      run_gemm(s, matmul_before, c.dt, c.rows, c.cols, 512);
    })->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
  }
}

}  // namespace
}  // namespace dsv4::kernels

int main(int argc, char** argv) {
  using namespace dsv4::kernels;
  benchmark::Initialize(&argc, argv);
  g_read_gbps = measure_read_bandwidth_gbps();
  g_peak_gflops = measure_fma_peak_gflops();
  std::printf("matmul impl %s, %d threads: measured read bandwidth %.1f GB/s, f32 FMA peak %.1f GFLOP/s\n",
              matmul_impl_name(active_matmul_impl()), omp_get_max_threads(), g_read_gbps, g_peak_gflops);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

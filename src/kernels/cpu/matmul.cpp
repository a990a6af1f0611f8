// matmul(): picks the instruction-set variant once (CPU feature detection, a table of function
// pointers) and shares the rows out over the OpenMP threads (matmul_many). Every variant sums in
// the canonical order of matmul.h, so the split, n and the variant never change a result.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/parallel.h"
#include "core/status.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels {

std::atomic<bool> detail::g_fp8_integer_decode{false};
std::atomic<bool> detail::g_fp4_bf16_dot{false};
thread_local int64_t detail::g_fp4_dot_tiles = 0;
thread_local int64_t detail::g_fp8_dot_tiles = 0;

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

// Seconds for `iters` rounds of the FMA probe on this thread.
double time_fma_probe(const detail::MatmulIsa& isa, int64_t iters, float multiplier) {
  const auto t0 = std::chrono::steady_clock::now();
  isa.fma_probe(iters, multiplier);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Integer FP8 decode only where a subnormal FMA operand costs (almost) nothing extra: best of
// three ~1 ms runs each (the machine may be busy), 1.5x margin.
bool probe_fp8_integer_decode() {
  const MatmulImpl impl = best_impl();
  if (impl != MatmulImpl::avx512 && impl != MatmulImpl::avx2) return false;
  const detail::MatmulIsa& isa = impl == MatmulImpl::avx512 ? detail::matmul_isa_avx512() : detail::matmul_isa_avx2();
  double normal = 1e30, subnormal = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    normal = std::min(normal, time_fma_probe(isa, 100'000, 0.9999999f));
    subnormal = std::min(subnormal, time_fma_probe(isa, 100'000, 0x1p-140f));
  }
  return subnormal < 1.5 * normal;
}

// vdpbf16ps where the AVX-512 variant runs and its probe says it equals the FMA chain.
bool bf16_dot_usable() {
  static const bool ok = best_impl() == MatmulImpl::avx512 && detail::matmul_isa_avx512().bf16_dot_probe();
  return ok;
}

void init_probed_kernels_once() {
  static const bool done = [] {
    detail::g_fp8_integer_decode.store(probe_fp8_integer_decode());
    detail::g_fp4_bf16_dot.store(bf16_dot_usable());
    return true;
  }();
  (void)done;
}

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

// Below this much work (row_cost units: 2^20 is ~200 KB of FP8 weights at n = 1, ~10 us on one
// core) the fork/join of the thread pool (~8 us with OMP_WAIT_POLICY=passive on the 2-core VM)
// costs more than it saves.
constexpr int64_t kMinParallelCost = int64_t(1) << 20;

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

Fp8Decode active_fp8_decode() {
  init_probed_kernels_once();
  return detail::g_fp8_integer_decode.load() ? Fp8Decode::integer : Fp8Decode::f16;
}

void select_fp8_decode(Fp8Decode d) {
  init_probed_kernels_once();
  detail::g_fp8_integer_decode.store(d == Fp8Decode::integer);
}

Fp4Dot active_fp4_dot() {
  init_probed_kernels_once();
  return detail::g_fp4_bf16_dot.load() ? Fp4Dot::bf16 : Fp4Dot::fma;
}

void select_fp4_dot(Fp4Dot d) {
  init_probed_kernels_once();
  detail::g_fp4_bf16_dot.store(d == Fp4Dot::bf16 && bf16_dot_usable());
}

int64_t fp4_dot_tiles_on_this_thread() { return detail::g_fp4_dot_tiles; }
int64_t fp8_dot_tiles_on_this_thread() { return detail::g_fp8_dot_tiles; }

bool select_matmul_impl(MatmulImpl impl) {
  if (!matmul_impl_supported(impl)) return false;
  g_selected.store(int(impl), std::memory_order_relaxed);
  return true;
}

namespace {

const detail::MatmulIsa& isa_for_job(MatmulImpl impl, const WeightView& w) {
  return detail::matmul_fast_shape_ok(w) ? isa_for(impl) : detail::matmul_isa_generic();
}

// Rows [r0, r1) of every token's y rounded to bf16 when the job asks for it (MatmulJob::bf16_out).
void round_outputs(const MatmulJob& job, int64_t r0, int64_t r1) {
  if (!job.bf16_out) return;
  for (int64_t t = 0; t < job.n; ++t) {
    float* y = job.y + t * job.w.rows;
    for (int64_t r = r0; r < r1; ++r) y[r] = round_bf16(y[r]);
  }
}

void run_rows(MatmulImpl impl, const MatmulJob& job, int64_t r0, int64_t r1, float* scratch) {
  const detail::MatmulIsa& isa = isa_for_job(impl, job.w);
  if (job.order == SumOrder::two_slices) isa.rows_two_slices(job.w, job.x, job.n, job.y, r0, r1, scratch);
  else isa.rows(job.w, job.x, job.n, job.y, r0, r1, scratch);
  round_outputs(job, r0, r1);
}

// Weight bytes one row of w streams from memory, in quarter bytes (FP4 reads half the bytes of
// FP8 per weight, BF16 twice).
int64_t row_quarter_bytes(const WeightView& w) {
  const int64_t K = w.cols;
  switch (w.dtype) {
    case DType::fp8_e4m3: return 4 * K;
    case DType::fp4_e2m1: return 2 * K + K / 8;   // K/2 bytes + K/32 scales
    case DType::bf16: return 8 * K;
    default: return 16 * K;
  }
}

// Work of one row of a job, in units of a quarter weight byte: the bytes the row streams from
// memory (what a decode step waits for) plus its multiply-adds over 4 (what dominates once n
// grows). A matmul_many mixing dtypes — the attention's FP8 projections with its BF16 compressor
// products, FP4 routed experts with the FP8 shared expert — then gives each thread the same share
// of memory traffic rather than of multiply-adds. At least one unit, so that cols = 0 still
// writes zeros; jobs with nothing to compute cost 0 and are never visited.
int64_t row_cost(const MatmulJob& j) {
  if (j.n <= 0 || j.w.rows <= 0) return 0;
  const int64_t c = row_quarter_bytes(j.w) + j.n * j.w.cols;
  return c > 0 ? c : 1;
}

// matmul_many hands out work in chunks of whole rows of one job: multiples of 128 rows (an FP8
// scale block, so no two chunks prescale the same activations; a multiple of every row tile).
// A matvec chunk (n < kGemmMinN) streams about kChunkBytes of weights (~15 us at 30 GB/s): the
// longest a thread that has finished can wait for another. A GEMM reuses each token block over
// its chunk's rows, so its chunks are a quarter of the job.
constexpr int64_t kChunkRowAlign = 128;
constexpr int64_t kChunkBytes = int64_t(512) << 10;

int64_t chunk_rows(const MatmulJob& j) {
  int64_t r = j.n < detail::kGemmMinN ? 4 * kChunkBytes / std::max<int64_t>(1, row_quarter_bytes(j.w))
                                      : j.w.rows / 4;
  r = (r + kChunkRowAlign - 1) / kChunkRowAlign * kChunkRowAlign;
  return std::max(r, kChunkRowAlign);
}

int64_t chunk_count(const MatmulJob& j) {
  return row_cost(j) == 0 ? 0 : (j.w.rows + chunk_rows(j) - 1) / chunk_rows(j);
}

// Index (over the chunks of all jobs, in order) of the first chunk of thread `id`'s share of
// `nth`: the chunk boundary nearest to id/nth of the total cost. Neighbouring threads compute
// the same boundary, so the shares tile the chunks exactly.
int64_t share_start(const MatmulJob* jobs, int64_t count, int64_t total, int64_t id, int64_t nth) {
  const int64_t target = int64_t((__int128(total) * id) / nth);
  int64_t before = 0, chunks = 0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t n = chunk_count(jobs[j]);
    if (n == 0) continue;
    const int64_t cost = jobs[j].w.rows * row_cost(jobs[j]);
    if (target < before + cost) {
      const int64_t per = chunk_rows(jobs[j]) * row_cost(jobs[j]);
      return chunks + std::min(n, (target - before + per / 2) / per);
    }
    before += cost;
    chunks += n;
  }
  return chunks;
}

// The chunks [front, end) a thread still owns, packed front | end << 32 so that the owner (taking
// from the front) and a thread that has finished its own (taking from the end) claim chunks with
// one compare-and-swap each. On its own cache line: the owner updates it at every chunk.
struct alignas(64) ChunkSpan {
  std::atomic<uint64_t> span{0};

  void set(int64_t front, int64_t end) { span.store(uint64_t(front) | uint64_t(end) << 32); }
  // The next chunk from the front (from_back: the last one), or -1 if none is left.
  int64_t take(bool from_back) {
    uint64_t s = span.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = s & 0xFFFFFFFFu, end = s >> 32;
      if (front >= end) return -1;
      const uint64_t next = from_back ? front | (end - 1) << 32 : (front + 1) | end << 32;
      if (span.compare_exchange_weak(s, next, std::memory_order_acq_rel)) return int64_t(from_back ? end - 1 : front);
    }
  }
};

// Finds the job holding a chunk: forward from the last one found (a thread's own chunks come in
// order), from the first job when asked for an earlier chunk (taken from another thread's end).
struct ChunkCursor {
  const MatmulJob* jobs;
  int64_t count, job = 0, first = 0;   // first: index of job's chunk 0

  void seek(int64_t c) {
    if (c < first) job = first = 0;
    for (int64_t n; job < count && c >= first + (n = chunk_count(jobs[job])); ++job) first += n;
  }
};

// Per-thread chunk spans of the calling thread's matmul_many calls, grown once to the pool size.
ChunkSpan* chunk_spans(int64_t n) {
  thread_local std::unique_ptr<ChunkSpan[]> spans;
  thread_local int64_t cap = 0;
  if (n > cap) {
    spans.reset(new ChunkSpan[size_t(n)]);
    cap = n;
  }
  return spans.get();
}

}  // namespace

void matmul_many(const MatmulJob* jobs, int64_t count) {
  const MatmulImpl impl = active_matmul_impl();
  init_probed_kernels_once();
  if (impl == MatmulImpl::reference) {
    std::vector<float> row;
    for (int64_t j = 0; j < count; ++j) {
      const MatmulJob& job = jobs[j];
      if (job.n <= 0) continue;
      if (job.order == SumOrder::canonical) {
        matmul_ref(job.w, job.x, job.n, job.y);
      } else {
        row.resize(size_t(job.w.cols));
        matmul_two_slices_rows(job.w, job.x, job.n, job.y, 0, job.w.rows, row.data());
      }
      round_outputs(job, 0, job.w.rows);
    }
    return;
  }
  int64_t total = 0, scratch_floats = 0;
  for (int64_t j = 0; j < count; ++j) {
    DSV4_CHECK(jobs[j].order == SumOrder::canonical || jobs[j].w.dtype == DType::bf16 ||
               jobs[j].w.dtype == DType::f32);
    if (row_cost(jobs[j]) == 0) continue;
    total += jobs[j].w.rows * row_cost(jobs[j]);
    const int64_t sf = isa_for_job(impl, jobs[j].w).scratch_floats(jobs[j].w.cols);
    if (sf > scratch_floats) scratch_floats = sf;
  }
  if (total == 0) return;
  // Each thread owns an equal share of the work (by row_cost), as consecutive chunks it runs front
  // to back; one that finishes early takes chunks from the end of the others' shares. Cores do
  // not stream memory at the same speed (neighbours on a shared host, other processes): on the
  // 2-core development VM, with fixed shares one thread waited for the other for 8-34 % of the
  // decode-step matmul time; with chunks, 2 %. Rows are independent, so which thread runs a
  // chunk never changes a result.
  const bool parallel = total >= kMinParallelCost;
  const int64_t planned = parallel && !omp_in_parallel() ? omp_get_max_threads() : 1;
  int64_t chunks = 0;
  for (int64_t j = 0; j < count; ++j) chunks += chunk_count(jobs[j]);
  DSV4_CHECK(chunks < (int64_t(1) << 32));
  ChunkSpan* spans = chunk_spans(planned);
  for (int64_t t = 0, start = 0; t < planned; ++t) {   // share t ends where share t + 1 starts
    const int64_t end = share_start(jobs, count, total, t + 1, planned);
    spans[t].set(start, end);
    start = end;
  }
  run_parallel(parallel, [&](int64_t id, int64_t) {
    ChunkCursor cursor{jobs, count};
    float* scratch = nullptr;
    for (int64_t k = 0; k < planned; ++k) {
      ChunkSpan& span = spans[(id + k) % planned];
      for (int64_t c = span.take(k > 0); c >= 0; c = span.take(k > 0)) {
        cursor.seek(c);
        const MatmulJob& job = jobs[cursor.job];
        const int64_t rows = chunk_rows(job), r0 = (c - cursor.first) * rows;
        if (!scratch) scratch = thread_scratch(scratch_floats);
        run_rows(impl, job, r0, std::min(r0 + rows, job.w.rows), scratch);
      }
    }
  });
}

void matmul(const WeightView& w, const float* x, int64_t n, float* y) {
  const MatmulJob job{w, x, n, y};
  matmul_many(&job, 1);
}

}  // namespace dsv4::kernels

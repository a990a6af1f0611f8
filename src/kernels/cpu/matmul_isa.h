// Internal to kernels/cpu: the table each instruction-set variant of matmul fills, and the
// canonical summation order they share (described in matmul.h). Not for use outside kernels/.
#pragma once

#include <atomic>
#include <cstdint>

#include "kernels/cpu/matmul.h"

namespace dsv4::kernels::detail {

// Products with fewer tokens than this run the matvec kernels (weights decoded in registers,
// bandwidth-bound); from this many on, the GEMM (tiles dequantised once, reused across tokens).
constexpr int64_t kGemmMinN = 8;
// FP8 matvec products with at least this many tokens run on the BF16 dot product where the CPU
// has it (Fp4Dot::bf16, matmul.h) and it gives the canonical bits; a single token stays on the
// FMA kernel (bandwidth-bound either way).
constexpr int64_t kFp8DotMinN = 2;

// Computes y[t][r] for t in [0, n), r in [r0, r1), on the calling thread only.
// REQUIRES: matmul_fast_shape_ok(w); scratch holds scratch_floats(w.cols) floats, 64-byte aligned,
// owned by the calling thread. Allocates nothing.
using MatmulRowsFn = void (*)(const WeightView& w, const float* x, int64_t n, float* y,
                              int64_t r0, int64_t r1, float* scratch);

struct MatmulIsa {
  MatmulRowsFn rows;
  // The same contract in SumOrder::two_slices (BF16/F32 weights, cols % 16 == 0).
  MatmulRowsFn rows_two_slices;
  int64_t (*scratch_floats)(int64_t cols);
  // Runs `iters` rounds of independent FMA chains a = a * multiplier + c on the calling thread
  // and returns the number of floating-point operations done (2 per lane per FMA): the
  // compute-peak probe, and with a subnormal multiplier the subnormal-operand probe.
  double (*fma_probe)(int64_t iters, float multiplier);
  // Reads n floats (n % 64 == 0) with the widest loads and the matvec's prefetch distance; returns
  // their sum (so the reads cannot be dropped): the bandwidth probe's inner loop.
  float (*read_probe)(const float* p, int64_t n);
  // True if this CPU has AVX512-BF16 and its vdpbf16ps, on test vectors, equals two fused
  // multiply-adds (odd word, then even word): the condition for Fp4Dot::bf16 (matmul.h).
  bool (*bf16_dot_probe)();
};

// True when the FP8 matvec uses dec_fp8_32_int (Fp8Decode::integer in matmul.h), false for the
// f16 route; set by matmul.cpp (probe, or select_fp8_decode), read by the SIMD variants.
extern std::atomic<bool> g_fp8_integer_decode;
// True when the AVX-512 FP4 matvec may use vdpbf16ps (Fp4Dot::bf16 in matmul.h); set by
// matmul.cpp (probe, or select_fp4_dot), read by the AVX-512 variant.
extern std::atomic<bool> g_fp4_bf16_dot;
// Row tiles this thread ran through mv_fp4_dot / mv_fp8_dot (fp4_dot_tiles_on_this_thread,
// fp8_dot_tiles_on_this_thread, matmul.h).
extern thread_local int64_t g_fp4_dot_tiles;
extern thread_local int64_t g_fp8_dot_tiles;

const MatmulIsa& matmul_isa_generic();
const MatmulIsa& matmul_isa_avx2();
const MatmulIsa& matmul_isa_avx512();

// Column counts the SIMD paths handle: FP8/FP4 need cols % 32 == 0 (V4: all dims are multiples of
// 128) and FP8 128x128 or 32x32 scale blocks, BF16/F32 cols % 16 == 0. Other shapes run on the generic path (same canonical order).
inline bool matmul_fast_shape_ok(const WeightView& w) {
  switch (w.dtype) {
    case DType::fp8_e4m3: return w.cols % 32 == 0 && (w.block == 128 || w.block == 32);
    case DType::fp4_e2m1: return w.cols % 32 == 0;
    case DType::bf16:
    case DType::f32: return w.cols % 16 == 0;
    default: return false;
  }
}

}  // namespace dsv4::kernels::detail

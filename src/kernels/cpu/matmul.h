// Weight x activation products on the CPU, reading weights in their stored format.
//
// y[t][r] = sum_k W[r][k] * x[t][k], f32 accumulation, for t in [0, n), r in [0, rows).
// W is dequantised on the fly (spec §3.2: FP8 E4M3 x 2^(S-127) per 128x128 block, v4.1 §3.2: per
// 32x32 block; FP4 E2M1 x
// 2^(S-127) per row and 32 columns; BF16; F32) — dequantisation is exact, so the only rounding is
// the f32 summation. Callers apply the reference's activation quantisation (spec §4.2) to x first
// and ask for y rounded to bf16 (MatmulJob::bf16_out) where the spec says so (§4.3).
//
// Invariant every implementation keeps: y[t][r] depends only on row r of W and row t of x — not
// on n, the thread count or the other rows — so a prompt gives bit-identical logits whether it
// is processed in one chunk, in several, or token by token.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace dsv4::kernels {

// A weight matrix viewed in place inside the checkpoint mapping (never copied).
struct WeightView {
  DType dtype = DType::f32;     // bf16, f32, fp8_e4m3 (E8M0 128x128 scales) or fp4_e2m1 (pairs,
                                // low nibble = even column, E8M0 scale per row per 32 columns)
  int64_t rows = 0, cols = 0;   // logical [out_features, in_features]
  const void* data = nullptr;
  const uint8_t* scale = nullptr;
  // FP8 only: the edge of a square scale block, 128 (V4, spec §3.2) or 32 (V4.1, v4.1 §3.2). The
  // SIMD paths take both (32 without their prescaled and BF16-dot variants); other blocks run on
  // the generic path. Every path sums in the same canonical order.
  int64_t block = 128;
  // Not read by matmul: the block of the activation quantisation that the reference's GEMM on
  // this weight applies to its input first (spec §4.2: 128; v4.1 §4.2: 32), kept with the weight
  // so that model/linear applies the architecture's block without being told.
  int act_block = 128;
};

// y[n, rows] = x[n, cols] · Wᵀ. Uses all threads of the OpenMP pool.
// The fast path (every implementation except `reference`) sums in one canonical order: 16 f32
// lanes, lane l accumulating with fused multiply-adds the products whose position in the row is
// ≡ l (mod 16), positions walked in ascending order, then the lanes added pairwise
// (l += l+8, l += l+4, l += l+2, l += l+1). Positions are the columns, except for FP4, walked in
// the order of the AVX-512 BF16 dot product (vdpbf16ps: lane p adds the product of the odd word
// of its pair, then the even one): in each 32-column block, position p < 16 is column
// 8*(p%4) + 4 + p/4 and position 16 + p column 8*(p%4) + p/4. So generic, AVX2 and AVX-512 give
// bit-identical results, for any n and thread count.
// REQUIRES: x and y do not overlap; x holds n rows of cols floats, y n rows of rows floats.
void matmul(const WeightView& w, const float* x, int64_t n, float* y);

// The order a product sums in.
//  * canonical: the 16-lane order above — the fastest on a CPU, used for every product whose
//    output the reference rounds (to bf16, or through FP8 quantisation) before it matters.
//  * two_slices: the order of the reference GPU's f32 GEMM (cuBLAS SIMT SGEMM, two K-slices),
//    needed where f32 outputs feed a chaotic computation directly (the compressor's projections,
//    spec §5.5: one pooled value an ulp off flips the bf16 and FP8 roundings of a whole compressed
//    entry). Positions k are cut into runs of 8; runs 0, 2, 4, ... are summed into one
//    accumulator and runs 1, 3, 5, ... into another, each with fused multiply-adds in ascending
//    k from 0, then y = acc0 + acc1. Measured on an H100 (torch.matmul of bf16-valued f32
//    [600 x 256] · [256 x 1024], the tiny-c compressor shape): every one of 614,400 outputs
//    bit-identical (tools/cuda_math/README.md). BF16 and F32 weights only; cols % 16 == 0.
enum class SumOrder { canonical, two_slices };

// One product of a batch for matmul_many().
struct MatmulJob {
  WeightView w;
  const float* x = nullptr;   // n rows of w.cols floats
  int64_t n = 0;
  float* y = nullptr;         // n rows of w.rows floats
  SumOrder order = SumOrder::canonical;
  // y = bf16(y) (kept as f32), for the reference's GEMMs with bf16 output (spec §4.3, §6.1). Each
  // chunk of rows is rounded by the thread that summed it, right after, while it is in cache.
  bool bf16_out = false;
};

// Runs independent products in one parallel region, so many small matrices — the routed experts
// of one MoE layer at decode, or w1 and w3 on the same input — keep every thread busy without a
// fork/join each: the work (weight bytes and multiply-adds of every job) is cut into chunks of
// whole rows, each thread owns an equal share and, once done, takes chunks from the end of the
// others' shares. Each y equals what matmul() gives for its job, bit for bit.
// REQUIRES: no job's y overlaps another job's x or y.
void matmul_many(const MatmulJob* jobs, int64_t count);

// The implementations matmul() can run. `reference` is matmul_ref (sequential sum, single thread;
// for debugging); the others keep the canonical order above.
enum class MatmulImpl { reference, generic, avx2, avx512 };
const char* matmul_impl_name(MatmulImpl impl);
// True if this CPU can run impl (reference and generic always can).
bool matmul_impl_supported(MatmulImpl impl);
// The implementation matmul() uses: the best supported one, detected once at first use, unless
// select_matmul_impl() chose another. Selecting is for tests, benchmarks and a debug flag; it is
// not thread-safe with concurrent matmul() calls. Returns false (and changes nothing) if impl is
// not supported on this CPU.
MatmulImpl active_matmul_impl();
bool select_matmul_impl(MatmulImpl impl);

// Puts the active implementation back when it goes out of scope (tests, `score --reference-kernels`).
class RestoreMatmulImpl {
 public:
  RestoreMatmulImpl() : saved_(active_matmul_impl()) {}
  ~RestoreMatmulImpl() { select_matmul_impl(saved_); }
  RestoreMatmulImpl(const RestoreMatmulImpl&) = delete;
  RestoreMatmulImpl& operator=(const RestoreMatmulImpl&) = delete;

 private:
  MatmulImpl saved_;
};

// How the SIMD FP8 matvec decodes E4M3 weights; results are bit-identical either way. `integer`
// (three integer ops per 16 weights) is faster where FMAs take subnormal operands at full speed
// (Zen 5: FP8 [4096 x 4096] cold, 18.5 -> 20.4 GB/s on one core); `f16` (through vcvtph2ps) is
// what CPUs that take a microcode assist for each subnormal operand need (Intel Xeon: 20x slower
// with the integer decode). Chosen once by timing FMAs with a subnormal operand against
// normal ones on the first matmul; selecting is for tests and benchmarks (not thread-safe with
// concurrent matmul calls).
enum class Fp8Decode { f16, integer };
Fp8Decode active_fp8_decode();
void select_fp8_decode(Fp8Decode d);

// How the AVX-512 FP4 matvec multiplies; results are bit-identical either way. `bf16` runs
// vdpbf16ps (32 products per instruction, the weights looked up as bf16 words) on CPUs with
// AVX512-BF16 whose vdpbf16ps was checked, on the first matmul, to equal two fused multiply-adds
// (odd word, then even word; Zen 5 and Intel do). It is taken only where it gives the canonical
// bits: activations exactly bf16 (the FP8-quantised activations of spec §4.2 are), no block scale
// outside [2, 252], and every product and partial sum a multiple of at least 2^-126 (so neither
// the instruction's flush of subnormals nor rounding differs from the FMA chain); other rows and
// calls take the f32 FMA kernel. Selecting is for tests and benchmarks (not thread-safe with
// concurrent matmul calls); `bf16` is ignored where the CPU lacks it.
enum class Fp4Dot { fma, bf16 };
Fp4Dot active_fp4_dot();
void select_fp4_dot(Fp4Dot d);
// Row tiles of the FP4 matvec the calling thread has run on the BF16 dot product so far (tests
// and benchmarks: whether the fast path is taken).
int64_t fp4_dot_tiles_on_this_thread();
// The same switch (Fp4Dot::bf16) lets the FP8 GEMM (n >= 8) run on vdpbf16ps where that gives
// the canonical bits: activations bf16 values (as FP8-quantised ones are), the weights decoded
// exactly to bf16 with their block scale, every product and partial sum a normal multiple of at
// least 2^-126. Tiles of 4 rows x up to 4 tokens the calling thread has run that way:
int64_t fp8_dot_tiles_on_this_thread();

// The scalar reference implementation (single-threaded loops); the fast path is tested against it.
void matmul_ref(const WeightView& w, const float* x, int64_t n, float* y);
// Scalar SumOrder::two_slices for rows [r0, r1): the reference and generic paths, the tail rows
// of the SIMD path, and the oracle the SIMD path is tested against. row: scratch of w.cols floats.
void matmul_two_slices_rows(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                            float* row);

// Dequantises row r of W into out[cols] (exact). Used by the reference path and tests.
void dequant_row(const WeightView& w, int64_t r, float* out);

}  // namespace dsv4::kernels

// The AVX-512 (F, BW, VL, DQ) + F16C vector primitives, one zmm per 16-lane vector, and the
// kernels written over them, instantiated here for this instruction set:
//   matmul_simd.inl -> matmul_isa_avx512() (MatmulIsa: the matmul variant of matmul.h, with the
//                      vdpbf16ps FP4 dot product where the CPU has AVX512_BF16)
//   attn_simd.inl   -> attn_isa_avx512()   (AttnIsa: attention rows and indexer scores, sparse_attn.h)
// Compiled with per-file -mavx512* flags (CMakeLists.txt); reached only through the dispatch tables
// after __builtin_cpu_supports said yes. Numerics: the canonical orders of matmul.h and sparse_attn.h.
#include <immintrin.h>

// GCC 12 warns inside its own intrinsic headers (the deliberately undefined `__Y` of the
// _mm*_undefined_* helpers) once they are inlined here; the warning is about the header, not us.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/attn_isa.h"
#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels::detail {
namespace avx512_impl {
namespace {

struct V16 {
  __m512 v;
};
inline V16 v_zero() { return {_mm512_setzero_ps()}; }
inline V16 v_load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void v_store(float* p, V16 a) { _mm512_storeu_ps(p, a.v); }
inline V16 v_set1(float f) { return {_mm512_set1_ps(f)}; }
inline V16 v_mul(V16 a, V16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline V16 v_fma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// Canonical tree: l += l+8 (256-bit halves), l += l+4 (128-bit halves), l += l+2, l += l+1.
inline float v_reduce(V16 a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm512_extractf32x8_ps(a.v, 1));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}

// v_reduce of 16 vectors at once, transposed: each step adds the same lane pairs as v_reduce
// (so the same bits) for several vectors per instruction. After the four levels, lane 4k + m
// holds the sum of a[4m + k]; one permute puts sum i in lane i.
inline void v_reduce_16(const V16* a, float* out) {
  __m512 v[8], w[4], x[2];
  for (int p = 0; p < 8; ++p)  // l += l+8: [a(2p) 8 lanes | a(2p+1) 8 lanes]
    v[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * p].v, a[2 * p + 1].v, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a[2 * p].v, a[2 * p + 1].v, _MM_SHUFFLE(3, 2, 3, 2)));
  for (int q = 0; q < 4; ++q)  // l += l+4: one 128-bit quad per vector a(4q..4q+3)
    w[q] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int r = 0; r < 2; ++r)  // l += l+2 within each quad
    x[r] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * r], w[2 * r + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(w[2 * r], w[2 * r + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),  // l += l+1
                                 _mm512_shuffle_ps(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(idx, s));
}

// E4M3 -> f16 by moving bits: sign to bit 15, the 4 exponent and 3 mantissa bits to bits 10..13
// and 7..9. f16 has bias 15 against E4M3's 7, and its subnormals (exp 0) are m * 2^-24 against
// E4M3's m * 2^-9 with m shifted by 7: every code, subnormals included, decodes to value * 2^-8
// exactly. NaN codes (S.1111.111) decode to ±480 * 2^-8 instead of NaN; checkpoints hold none.
inline void dec_fp8_32(const uint8_t* p, V16& a, V16& b) {
  __m512i h = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  // Sign-extended byte << 7: bits 0..6 -> 7..13, sign -> 14 (cleared) and 15.
  h = _mm512_and_si512(_mm512_slli_epi16(h, 7), _mm512_set1_epi16(int16_t(0xBFFF)));
  a.v = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  b.v = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

// E4M3 -> f32 by moving bits: the sign-extended code shifted left by 20 puts the 4 exponent bits
// at 23..26 and the 3 mantissa bits at 20..22, and copies of the sign at 27..31; clearing 27..30
// leaves the sign at 31. The f32 exponent is then E4M3's exponent field (bias 127 against 7), and
// f32 subnormals (exponent 0) are m * 2^-149 against E4M3's m * 2^-9: every code, subnormals
// included, decodes to value * 2^-120 exactly. 3 integer ops per 16 weights, against the f16
// route's convert/shuffle-bound 5.
inline void dec_fp8_32_int(const uint8_t* p, V16& a, V16& b) {
  const __m512i keep = _mm512_set1_epi32(int32_t(0x87F00000u));
  const __m512i u = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
  a.v = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(u, 20), keep));
  b.v = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(v, 20), keep));
}

struct Fp4Tbl {
  __m512 t;
};
inline Fp4Tbl fp4_tbl(float s) {
  return {_mm512_mul_ps(_mm512_loadu_ps(kFp4Values), _mm512_set1_ps(s))};
}
// 16 bytes = 32 E2M1 codes. The 16 bytes go to every 128-bit lane (a load-unit broadcast, no
// shuffle); lane i = 4L + q then holds bytes 4q..4q+3, and a per-lane shift by 16 + 4L (lo) or
// 4L (hi) brings down the nibble of column 8q + 4 + L or 8q + L: the canonical FP4 order
// (matmul.h). vpermps reads only index bits 0..3, so no mask is needed. Two shuffles (the
// lookups) per 32 weights instead of three with a byte->dword expansion.
inline void dec_fp4_32(const uint8_t* p, const Fp4Tbl& t, V16& lo, V16& hi) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i sh_lo = _mm512_set_epi32(28, 28, 28, 28, 24, 24, 24, 24, 20, 20, 20, 20, 16, 16, 16, 16);
  const __m512i sh_hi = _mm512_set_epi32(12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0);
  lo.v = _mm512_permutexvar_ps(_mm512_srlv_epi32(v, sh_lo), t.t);
  hi.v = _mm512_permutexvar_ps(_mm512_srlv_epi32(v, sh_hi), t.t);
}

inline V16 dec_bf16_16(const uint16_t* p) {
  const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(u, 16))};
}

// spec §3.2 E8M0: the code in the f32 exponent field; e = 0 -> 2^-127 (0x00400000), 255 -> NaN.
inline void dec_e8m0_16(const uint8_t* p, float* out) {
  const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  __m512i bits = _mm512_slli_epi32(e, 23);
  bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()),
                               _mm512_set1_epi32(0x00400000));
  bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(255)),
                               _mm512_set1_epi32(0x7fc00000));
  _mm512_storeu_si512(out, bits);
}

// 4 x 6 accumulators + 4 weight vectors + 1 activation vector = 29 of 32 zmm registers.
constexpr int kGemmRows = 4;
constexpr int kGemmTok = 6;

inline V16 v_add(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V16 v_gather_stride(const float* p, int32_t stride) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(stride));
  return {_mm512_i32gather_ps(idx, p, 4)};
}
// m[i] lane j -> m[j] lane i. Unpacks pair rows within 128-bit lanes (rows i..i+3 of column 4L+c
// in lane L of u[i+c]); two rounds of 128-bit lane shuffles then gather lane L of the four groups.
__attribute__((always_inline)) inline void v_transpose16(V16* m) {
  __m512 t[16], u[16];
  #pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(m[i].v, m[i + 1].v);
    t[i + 1] = _mm512_unpackhi_ps(m[i].v, m[i + 1].v);
  }
  #pragma GCC unroll 16
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  #pragma GCC unroll 16
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 v1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    m[c].v = _mm512_shuffle_f32x4(v0, v1, 0x88);
    m[c + 8].v = _mm512_shuffle_f32x4(v0, v1, 0xDD);
    m[c + 4].v = _mm512_shuffle_f32x4(w0, w1, 0x88);
    m[c + 12].v = _mm512_shuffle_f32x4(w0, w1, 0xDD);
  }
}

// y[j * ldy + i] = the lanes of acc[i][j] summed in the canonical tree.
template <int R, int T>
inline void store_sums(const __m512 (&acc)[R][T], float* y, int64_t ldy) {
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) y[j * ldy + i] = v_reduce({acc[i][j]});
}

// ---- FP4 matvec on vdpbf16ps (Fp4Dot::bf16, matmul.h) ----
// The 16 bytes of a 32-column block go to every 128-bit lane; a per-word shift by 4L brings down
// nibble L of word m, i.e. column 4m + L, into word 8L + m, and vpermw (5 index bits; the table
// holds the 16 values twice, so bit 4 does not matter) looks it up as a bf16 word. Dword q of
// lane L then pairs column 8q + L (even word) with 8q + 4 + L (odd word), which vdpbf16ps adds
// odd first: exactly the FMA chain of the canonical FP4 order. Per 32 weights: one shift, one
// lookup, one dot product (the FMA kernel: two shifts, two lookups, two FMAs); the lookup reads
// the table of the block's scale code from g_fp4_bf16_scaled. Measured on the 2-core EPYC
// (Zen 5), FP4 [2048 x 4096] cold, 2 threads: 35-37 -> 43-48 GB/s.

// bf16 words of the E2M1 values, twice.
constexpr uint16_t bf16_word(float f) { return uint16_t(__builtin_bit_cast(uint32_t, f) >> 16); }
alignas(64) constexpr uint16_t kFp4Bf16[32] = {
    bf16_word(kFp4Values[0]),  bf16_word(kFp4Values[1]),  bf16_word(kFp4Values[2]),  bf16_word(kFp4Values[3]),
    bf16_word(kFp4Values[4]),  bf16_word(kFp4Values[5]),  bf16_word(kFp4Values[6]),  bf16_word(kFp4Values[7]),
    bf16_word(kFp4Values[8]),  bf16_word(kFp4Values[9]),  bf16_word(kFp4Values[10]), bf16_word(kFp4Values[11]),
    bf16_word(kFp4Values[12]), bf16_word(kFp4Values[13]), bf16_word(kFp4Values[14]), bf16_word(kFp4Values[15]),
    bf16_word(kFp4Values[0]),  bf16_word(kFp4Values[1]),  bf16_word(kFp4Values[2]),  bf16_word(kFp4Values[3]),
    bf16_word(kFp4Values[4]),  bf16_word(kFp4Values[5]),  bf16_word(kFp4Values[6]),  bf16_word(kFp4Values[7]),
    bf16_word(kFp4Values[8]),  bf16_word(kFp4Values[9]),  bf16_word(kFp4Values[10]), bf16_word(kFp4Values[11]),
    bf16_word(kFp4Values[12]), bf16_word(kFp4Values[13]), bf16_word(kFp4Values[14]), bf16_word(kFp4Values[15])};
// kFp4Bf16 times 2^(e-127) for each block scale code e in [2, 252] (exponent field + e - 127 on
// the nonzero entries; other codes never reach the lookup): one 64-byte table per code, 16 KiB,
// so a block's lookup reads its table instead of building it.
alignas(64) uint16_t g_fp4_bf16_scaled[256][32];
void fill_fp4_bf16_scaled() {
  for (int e = 2; e <= 252; ++e)
    for (int i = 0; i < 32; ++i)
      g_fp4_bf16_scaled[e][i] = (kFp4Bf16[i] & 0x7FFF) ? uint16_t(kFp4Bf16[i] + (e - 127) * 128) : kFp4Bf16[i];
}

// The T activation rows as bf16 words in the weights' word order (word 8L + m of each 32-column
// block = column 4m + L), when vdpbf16ps may run: returns the lowest block scale code a weight
// row may have (see mv_fp4_dot), or 0 if the FMA kernel must run — Fp4Dot::fma selected, an
// activation not exactly a bf16 value, subnormal, infinite or NaN.
// Why the bound: a weight is a multiple of 2^(e-128) (E2M1 values are multiples of 1/2) and an
// activation with biased exponent f a multiple of 2^(f-134) (8 significant bits), so every
// product and every partial sum is a multiple of 2^(e + f - 262); with e + f >= 136 that is at
// least 2^-126, so no product is inexact and no sum is subnormal (vdpbf16ps flushes those).
inline int fp4_dot_prepare(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  if (!g_fp4_bf16_dot.load(std::memory_order_relaxed)) return 0;
  // Word 2c + 1 of the two zmm x[k..k+31] is the high half of column c.
  const __m512i idx = _mm512_set_epi16(63, 55, 47, 39, 31, 23, 15, 7, 61, 53, 45, 37, 29, 21, 13, 5,
                                       59, 51, 43, 35, 27, 19, 11, 3, 57, 49, 41, 33, 25, 17, 9, 1);
  const __m512i low = _mm512_set1_epi32(0xFFFF), mag = _mm512_set1_epi32(0x7FFFFFFF), ff = _mm512_set1_epi32(0xFF);
  __m512i fmin = ff;
  __mmask16 bad = 0;
  for (int64_t j = 0; j < T; ++j)
    for (int64_t k = 0; k < K; k += 32) {
      const __m512i a = _mm512_loadu_si512(x + j * K + k), b = _mm512_loadu_si512(x + j * K + k + 16);
      bad |= _mm512_test_epi32_mask(a, low) | _mm512_test_epi32_mask(b, low);
      const __m512i fa = _mm512_and_si512(_mm512_srli_epi32(a, 23), ff);
      const __m512i fb = _mm512_and_si512(_mm512_srli_epi32(b, 23), ff);
      bad |= _mm512_cmpeq_epi32_mask(fa, ff) | _mm512_cmpeq_epi32_mask(fb, ff);
      fmin = _mm512_mask_min_epu32(fmin, _mm512_test_epi32_mask(a, mag), fmin, fa);
      fmin = _mm512_mask_min_epu32(fmin, _mm512_test_epi32_mask(b, mag), fmin, fb);
      _mm512_storeu_si512(xb + j * K + k, _mm512_permutex2var_epi16(a, idx, b));
    }
  const int f = int(_mm512_reduce_min_epu32(fmin));   // 0: a subnormal; 255: all zero
  if (bad || f == 0) return 0;
  return 136 - f > 2 ? 136 - f : 2;
}

// R weight rows x T tokens of the FP4 matvec on vdpbf16ps; y[j * ldy + i]. Returns false (and
// writes nothing) if a block scale of these rows is outside [e_lo, 252] (below: see
// fp4_dot_prepare, and a weight must be a normal bf16; above: the exponent add would overflow),
// where the caller runs the FMA kernel instead.
template <int R, int T>
__attribute__((target("avx512bf16"))) bool mv_fp4_dot(const uint8_t* w, const uint8_t* s, int64_t K,
                                                      const uint16_t* xb, int e_lo, float* y, int64_t ldy) {
  const int64_t kb = K / 32;
  {
    __m128i mn = _mm_set1_epi8(char(0xFF)), mx = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 16 <= R * kb; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      mn = _mm_min_epu8(mn, v);
      mx = _mm_max_epu8(mx, v);
    }
    alignas(16) uint8_t lo[16], hi[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(lo), mn);
    _mm_store_si128(reinterpret_cast<__m128i*>(hi), mx);
    int e_min = 255, e_max = 0;
    for (int l = 0; l < 16; ++l) {
      e_min = lo[l] < e_min ? lo[l] : e_min;
      e_max = hi[l] > e_max ? hi[l] : e_max;
    }
    for (; i < R * kb; ++i) {
      e_min = s[i] < e_min ? s[i] : e_min;
      e_max = s[i] > e_max ? s[i] : e_max;
    }
    if (e_min < e_lo || e_max > 252) return false;
  }
  ++g_fp4_dot_tiles;
  __m512 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  const __m512i sh = _mm512_set_epi16(12, 12, 12, 12, 12, 12, 12, 12, 8, 8, 8, 8, 8, 8, 8, 8,
                                      4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
  const uint8_t* next_tile = w + R * (K / 2);
  for (int64_t b = 0; b < kb; ++b) {
    const int64_t k = 32 * b;
    __m512i xv[T];
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) xv[j] = _mm512_loadu_si512(xb + j * K + k);
    // The next tile, at the pace of this one (as mv_fp4; two tiles ahead measured slower).
    #pragma GCC unroll 16
    for (int64_t l = 0; l < R * 16; l += 64) __builtin_prefetch(next_tile + (k / 2) * R + l);
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512i t = _mm512_load_si512(g_fp4_bf16_scaled[s[i * kb + b]]);
      const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i * (K / 2) + k / 2)));
      const __m512i wv = _mm512_permutexvar_epi16(_mm512_srlv_epi16(v, sh), t);
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv, (__m512bh)xv[j]);
    }
  }
  store_sums<R, T>(acc, y, ldy);
  return true;
}

// ---- FP8 GEMM on vdpbf16ps (matmul.h fp8_dot_tiles_on_this_thread) ----
// FP8's canonical order walks columns: lane l adds column 32b + l, then 32b + 16 + l. vdpbf16ps
// lane l adds the product of its odd word, then its even one, so word 2l + 1 holds column l and
// word 2l column 16 + l of each 32-column block, for the weights and the activations alike.
// Weights are decoded exactly into bf16 with the block scale in the exponent; the activations
// are bf16 values as they are (matmul_simd.inl fp8_dot_fits bounds both, so that no product is
// inexact and no partial sum subnormal or infinite).

// Word 2l <- word 16 + l, word 2l + 1 <- word l.
inline __m512i fp8_dot_interleave() {
  return _mm512_set_epi16(15, 31, 14, 30, 13, 29, 12, 28, 11, 27, 10, 26, 9, 25, 8, 24,
                          7, 23, 6, 22, 5, 21, 4, 20, 3, 19, 2, 18, 1, 17, 0, 16);
}

// The activations as bf16 words in that order (xb[j * K + ...]); false (the f32 GEMM must run)
// unless Fp4Dot::bf16 is selected and every activation is a bf16 value (the low 16 bits zero).
inline bool fp8_dot_prepare(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  if (!g_fp4_bf16_dot.load(std::memory_order_relaxed)) return false;
  // Output word 2l + 1: the high half of a[l] (word 2l + 1 of a); word 2l: of b[l] (32 + 2l + 1).
  const __m512i idx = _mm512_set_epi16(31, 63, 29, 61, 27, 59, 25, 57, 23, 55, 21, 53, 19, 51, 17, 49,
                                       15, 47, 13, 45, 11, 43, 9, 41, 7, 39, 5, 37, 3, 35, 1, 33);
  const __m512i low = _mm512_set1_epi32(0xFFFF);
  __mmask16 bad = 0;
  for (int64_t j = 0; j < T; ++j)
    for (int64_t k = 0; k < K; k += 32) {
      const __m512i a = _mm512_loadu_si512(x + j * K + k), b = _mm512_loadu_si512(x + j * K + k + 16);
      bad |= _mm512_test_epi32_mask(a, low) | _mm512_test_epi32_mask(b, low);
      _mm512_storeu_si512(xb + j * K + k, _mm512_permutex2var_epi16(a, idx, b));
    }
  return bad == 0;
}

// bf16 words of m * 2^-9 for the E4M3 subnormal codes m = 0..7 (index bits 3-4 are zero there).
alignas(64) constexpr uint16_t kFp8SubnormalBf16[32] = {0, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60};

// R rows (one 128-row block, its E8M0 scales s per 128 columns) x T tokens; y[j * ldy + i].
template <int R, int T>
__attribute__((target("avx512bf16"))) void mv_fp8_dot(const uint8_t* w, int64_t K, const uint8_t* s,
                                                      const uint16_t* xb, float* y, int64_t ldy) {
  ++g_fp8_dot_tiles;
  __m512 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  const __m512i perm = fp8_dot_interleave(), keep = _mm512_set1_epi16(int16_t(0x87F0));
  const __m512i exp_bits = _mm512_set1_epi16(0x0078), sign = _mm512_set1_epi16(int16_t(0x8000));
  const __m512i sub_tbl = _mm512_load_si512(kFp8SubnormalBf16);
  const uint8_t* next_tile = w + R * K;
  for (int64_t k = 0; k < K; k += 32) {
    // (code << 4) & 0x87F0 is sign | E4M3 exponent and mantissa in bf16's fields; adding
    // (120 + e - 127) << 7 rebiases the exponent and applies the block scale 2^(e-127).
    const int e = s[k >> 7];
    const __m512i bias = _mm512_set1_epi16(int16_t((e - 7) << 7)), scale = _mm512_set1_epi16(int16_t((e - 127) << 7));
    __m512i xv[T];
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) xv[j] = _mm512_loadu_si512(xb + j * K + k);
    #pragma GCC unroll 16
    for (int64_t l = 0; l < R * 32; l += 64) __builtin_prefetch(next_tile + k * R + l);
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512i v = _mm512_permutexvar_epi16(
          perm, _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * K + k))));
      __m512i wv = _mm512_add_epi16(_mm512_and_si512(_mm512_slli_epi16(v, 4), keep), bias);
      const __mmask32 sub = _mm512_testn_epi16_mask(v, exp_bits);
      if (sub) {   // zero and subnormal codes (rare in max-scaled blocks): looked up, then scaled
        const __m512i m = _mm512_permutexvar_epi16(v, sub_tbl);
        const __mmask32 nz = _mm512_test_epi16_mask(m, m);
        const __m512i scaled = _mm512_mask_add_epi16(m, nz, m, scale);
        wv = _mm512_mask_mov_epi16(wv, sub, _mm512_or_si512(scaled, _mm512_and_si512(v, sign)));
      }
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv, (__m512bh)xv[j]);
    }
  }
  store_sums<R, T>(acc, y, ldy);
}

// vdpbf16ps against two FMAs (odd word, then even) on pseudo-random words: mixed signs, exponents
// spread over 2^-20..2^20 so that the additions round, zeros, and accumulators that cancel.
__attribute__((target("avx512bf16"))) bool bf16_dot_matches_fma() {
  uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  auto word = [&] {
    const uint32_t r = next();
    if ((r & 31) == 0) return uint16_t((r >> 5) & 0x8000);   // +-0
    return uint16_t(((r >> 8) & 0x8000) | ((107 + (r >> 16) % 40) << 7) | ((r >> 24) & 127));
  };
  auto f = [](uint16_t h) { return __builtin_bit_cast(float, uint32_t(h) << 16); };
  for (int round = 0; round < 256; ++round) {
    alignas(64) uint16_t a[32], b[32];
    alignas(64) float acc[16], got[16];
    for (int i = 0; i < 32; ++i) {
      a[i] = word();
      b[i] = word();
    }
    for (int l = 0; l < 16; ++l) acc[l] = -f(a[2 * l]) * f(b[2 * l]) * ((next() & 3) == 0 ? 1.0f : 0.3f);
    _mm512_store_ps(got, _mm512_dpbf16_ps(_mm512_load_ps(acc), (__m512bh)_mm512_load_si512(a),
                                          (__m512bh)_mm512_load_si512(b)));
    for (int l = 0; l < 16; ++l) {
      const float want = __builtin_fmaf(f(a[2 * l]), f(b[2 * l]), __builtin_fmaf(f(a[2 * l + 1]), f(b[2 * l + 1]), acc[l]));
      if (__builtin_bit_cast(uint32_t, want) != __builtin_bit_cast(uint32_t, got[l])) return false;
    }
  }
  return true;
}

bool simd_bf16_dot_probe() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512bf16") || !bf16_dot_matches_fma()) return false;
  fill_fp4_bf16_scaled();
  return true;
}

#include "kernels/cpu/matmul_simd.inl"

// ---- primitives of attn_simd.inl ----
inline V16 v_div(V16 a, V16 b) { return {_mm512_div_ps(a.v, b.v)}; }
// vmaxps(0, s) returns s unless 0 > s: std::max(s, 0.0f) lane by lane (NaN and -0 kept).
inline V16 v_relu(V16 s) { return {_mm512_max_ps(_mm512_setzero_ps(), s.v)}; }
inline V16 v_round_bf16(V16 a) {
  const __m512i u = _mm512_castps_si512(a.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
  r = _mm512_and_si512(r, _mm512_set1_epi32(int32_t(0xffff0000u)));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(_mm512_and_si512(u, _mm512_set1_epi32(int32_t(0xffff0000u))),
                                        _mm512_set1_epi32(0x00400000));
  return {_mm512_castsi512_ps(_mm512_mask_mov_epi32(r, nan, quiet))};
}
// 4 entries x 4 head vectors = 16 accumulators + 4 query vectors: 20 of 32 zmm.
constexpr int kIdxEntries = 4;

// 8 doubles for the attention's exact score sums.
struct VD8 {
  __m512d v;
};
inline VD8 vd_zero() { return {_mm512_setzero_pd()}; }
inline VD8 vd_load(const double* p) { return {_mm512_load_pd(p)}; }
inline void vd_store(double* p, VD8 a) { _mm512_store_pd(p, a.v); }
inline VD8 vd_set1(double d) { return {_mm512_set1_pd(d)}; }
inline VD8 vd_add(VD8 a, VD8 b) { return {_mm512_add_pd(a.v, b.v)}; }
inline VD8 vd_mul(VD8 a, VD8 b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline void v16_to_f64(V16 a, double* out) {
  _mm512_store_pd(out, _mm512_cvtps_pd(_mm512_castps512_ps256(a.v)));
  _mm512_store_pd(out + 8, _mm512_cvtps_pd(_mm512_extractf32x8_ps(a.v, 1)));
}
// P·V: 8 heads' partial sums + the value vector = 9 zmm.
constexpr int kPvHeads = 8;

#include "kernels/cpu/attn_simd.inl"

}  // namespace
}  // namespace avx512_impl

const MatmulIsa& matmul_isa_avx512() {
  static const MatmulIsa isa{avx512_impl::simd_rows, avx512_impl::simd_rows_two_slices, avx512_impl::simd_scratch_floats,
                             avx512_impl::simd_fma_probe, avx512_impl::simd_read_probe,
                             avx512_impl::simd_bf16_dot_probe};
  return isa;
}

const AttnIsa& attn_isa_avx512() {
  static const AttnIsa isa{avx512_impl::simd_attention_rows, avx512_impl::simd_indexer_scores};
  return isa;
}

}  // namespace dsv4::kernels::detail

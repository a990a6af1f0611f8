// The AVX2 + FMA + F16C (+ SSSE3 pshufb) vector primitives, a 16-lane vector being two ymm (lanes
// 0..7, 8..15), and the kernels written over them, instantiated here for this instruction set:
//   matmul_simd.inl -> matmul_isa_avx2() (MatmulIsa: the matmul variant of matmul.h)
//   attn_simd.inl   -> attn_isa_avx2()   (AttnIsa: attention rows and indexer scores, sparse_attn.h)
// Compiled with per-file -mavx2 -mfma -mf16c (CMakeLists.txt); reached only through the dispatch
// tables. Numerics: the canonical orders of matmul.h and sparse_attn.h, bit-identical to AVX-512.
#include <immintrin.h>

// GCC 12 warns inside its own intrinsic headers (the deliberately undefined `__Y` of the
// _mm*_undefined_* helpers) once they are inlined here; the warning is about the header, not us.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/attn_isa.h"
#include "kernels/cpu/matmul_isa.h"

namespace dsv4::kernels::detail {
namespace avx2_impl {
namespace {

struct V16 {
  __m256 lo, hi;
};
inline V16 v_zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V16 v_load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline void v_store(float* p, V16 a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
inline V16 v_set1(float f) { return {_mm256_set1_ps(f), _mm256_set1_ps(f)}; }
inline V16 v_mul(V16 a, V16 b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
inline V16 v_fma(V16 a, V16 b, V16 c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
// Canonical tree: l += l+8 (the two ymm), l += l+4, l += l+2, l += l+1.
inline float v_reduce(V16 a) {
  const __m256 h = _mm256_add_ps(a.lo, a.hi);
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}

inline void v_reduce_16(const V16* a, float* out) {
  for (int i = 0; i < 16; ++i) out[i] = v_reduce(a[i]);
}

// E4M3 -> f16 by moving bits, decoding to value * 2^-8 exactly (see the AVX-512 variant).
inline void dec_fp8_16(const uint8_t* p, V16& a) {
  __m256i h = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16(int16_t(0xBFFF)));
  a.lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  a.hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
inline void dec_fp8_32(const uint8_t* p, V16& a, V16& b) {
  dec_fp8_16(p, a);
  dec_fp8_16(p + 16, b);
}

// E4M3 -> f32 by moving bits, value * 2^-120 exactly (see the AVX-512 variant).
inline __m256 dec_fp8_8_int(const uint8_t* p) {
  const __m256i u = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(u, 20), _mm256_set1_epi32(int32_t(0x87F00000u))));
}
inline void dec_fp8_32_int(const uint8_t* p, V16& a, V16& b) {
  a = {dec_fp8_8_int(p), dec_fp8_8_int(p + 8)};
  b = {dec_fp8_8_int(p + 16), dec_fp8_8_int(p + 24)};
}

// vpermps has 8 entries here: look up the magnitude with nibble bits 0..2, then put bit 3 (the
// E2M1 sign) into the f32 sign bit. mag holds |value| * s for the 8 positive codes.
struct Fp4Tbl {
  __m256 mag;
};
inline Fp4Tbl fp4_tbl(float s) { return {_mm256_mul_ps(_mm256_loadu_ps(kFp4Values), _mm256_set1_ps(s))}; }
inline __m256 dec_fp4_8(__m256i idx, __m256 mag) {
  const __m256 v = _mm256_permutevar8x32_ps(mag, idx);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(idx, 28), _mm256_set1_epi32(int32_t(0x80000000u)));
  return _mm256_xor_ps(v, _mm256_castsi256_ps(sign));
}
// The canonical FP4 order (matmul.h): lane i of lo is column 8*(i%4) + 4 + i/4, i.e. byte
// 4*(i%4) + 2 + i/8, nibble (i/4) & 1; lane i of hi is byte 4*(i%4) + i/8, same nibble. A byte
// shuffle puts each lane's byte in place, a per-lane shift (0 for lanes 0..3, 4 for 4..7 of each
// ymm) brings its nibble down.
inline void dec_fp4_32(const uint8_t* p, const Fp4Tbl& t, V16& lo, V16& hi) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i b_lo = _mm_shuffle_epi8(v, _mm_setr_epi8(2, 6, 10, 14, 2, 6, 10, 14, 3, 7, 11, 15, 3, 7, 11, 15));
  const __m128i b_hi = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 4, 8, 12, 0, 4, 8, 12, 1, 5, 9, 13, 1, 5, 9, 13));
  const __m256i sh = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
  lo.lo = dec_fp4_8(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(b_lo), sh), t.mag);
  lo.hi = dec_fp4_8(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(b_lo, 8)), sh), t.mag);
  hi.lo = dec_fp4_8(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(b_hi), sh), t.mag);
  hi.hi = dec_fp4_8(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(b_hi, 8)), sh), t.mag);
}

inline V16 dec_bf16_16(const uint16_t* p) {
  const __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(b, 16))};
}

// spec §3.2 E8M0: the code in the f32 exponent field; e = 0 -> 2^-127 (0x00400000), 255 -> NaN.
inline void dec_e8m0_8(const uint8_t* p, float* out) {
  const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  __m256i bits = _mm256_slli_epi32(e, 23);
  bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x00400000),
                            _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
  bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x7fc00000),
                            _mm256_cmpeq_epi32(e, _mm256_set1_epi32(255)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), bits);
}
inline void dec_e8m0_16(const uint8_t* p, float* out) {
  dec_e8m0_8(p, out);
  dec_e8m0_8(p + 8, out + 8);
}

// 2 x 2 accumulators (8 ymm) + 2 weight vectors (4 ymm) + 1 activation (2 ymm) = 14 of 16 ymm.
constexpr int kGemmRows = 2;
constexpr int kGemmTok = 2;

inline V16 v_add(V16 a, V16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline V16 v_gather_stride(const float* p, int32_t stride) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
  return {_mm256_i32gather_ps(p, idx, 4), _mm256_i32gather_ps(p + 8 * stride, idx, 4)};
}
// out[c] = lane c of in[0..7] (an 8 x 8 transpose).
__attribute__((always_inline)) inline void transpose8(const __m256* in, __m256* out) {
  __m256 t[8], s[8];
  #pragma GCC unroll 16
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(in[i], in[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(in[i], in[i + 1]);
  }
  #pragma GCC unroll 16
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  #pragma GCC unroll 16
  for (int c = 0; c < 4; ++c) {
    out[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    out[c + 4] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
  }
}
// m[i] lane j -> m[j] lane i, as four 8 x 8 blocks.
__attribute__((always_inline)) inline void v_transpose16(V16* m) {
  __m256 a[8], b[8], c[8], d[8], ta[8], tb[8], tc[8], td[8];
  #pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    a[i] = m[i].lo;       // rows 0..7, columns 0..7
    b[i] = m[i].hi;       // rows 0..7, columns 8..15
    c[i] = m[i + 8].lo;   // rows 8..15, columns 0..7
    d[i] = m[i + 8].hi;
  }
  transpose8(a, ta);
  transpose8(b, tb);
  transpose8(c, tc);
  transpose8(d, td);
  #pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    m[i] = {ta[i], tc[i]};
    m[i + 8] = {tb[i], td[i]};
  }
}

// No BF16 dot product here (Fp4Dot, matmul.h): the FP4 matvec always takes the FMA kernel.
inline int fp4_dot_prepare(const float*, int64_t, int64_t, uint16_t*) { return 0; }
template <int R, int T>
bool mv_fp4_dot(const uint8_t*, const uint8_t*, int64_t, const uint16_t*, int, float*, int64_t) {
  return false;
}
inline bool fp8_dot_prepare(const float*, int64_t, int64_t, uint16_t*) { return false; }
template <int R, int T>
void mv_fp8_dot(const uint8_t*, int64_t, const uint8_t*, const uint16_t*, float*, int64_t) {}
bool no_bf16_dot() { return false; }

#include "kernels/cpu/matmul_simd.inl"

// ---- primitives of attn_simd.inl ----
inline V16 v_div(V16 a, V16 b) { return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)}; }
// vmaxps(0, s) returns s unless 0 > s: std::max(s, 0.0f) lane by lane (NaN and -0 kept).
inline V16 v_relu(V16 s) {
  return {_mm256_max_ps(_mm256_setzero_ps(), s.lo), _mm256_max_ps(_mm256_setzero_ps(), s.hi)};
}
inline __m256 round_bf16_8(__m256 a) {
  const __m256i u = _mm256_castps_si256(a);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
  r = _mm256_and_si256(r, _mm256_set1_epi32(int32_t(0xffff0000u)));
  // |u| > inf as signed 32-bit compares: both sides are below 2^31.
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(int32_t(0xffff0000u))),
                                        _mm256_set1_epi32(0x00400000));
  return _mm256_castsi256_ps(_mm256_blendv_epi8(r, quiet, nan));
}
inline V16 v_round_bf16(V16 a) { return {round_bf16_8(a.lo), round_bf16_8(a.hi)}; }
// 1 entry x 4 head vectors = 8 ymm accumulators + 8 ymm of queries.
constexpr int kIdxEntries = 1;

// 8 doubles (two ymm) for the attention's exact score sums.
struct VD8 {
  __m256d lo, hi;
};
inline VD8 vd_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
inline VD8 vd_load(const double* p) { return {_mm256_load_pd(p), _mm256_load_pd(p + 4)}; }
inline void vd_store(double* p, VD8 a) {
  _mm256_store_pd(p, a.lo);
  _mm256_store_pd(p + 4, a.hi);
}
inline VD8 vd_set1(double d) { return {_mm256_set1_pd(d), _mm256_set1_pd(d)}; }
inline VD8 vd_add(VD8 a, VD8 b) { return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)}; }
inline VD8 vd_mul(VD8 a, VD8 b) { return {_mm256_mul_pd(a.lo, b.lo), _mm256_mul_pd(a.hi, b.hi)}; }
inline void v16_to_f64(V16 a, double* out) {
  _mm256_store_pd(out, _mm256_cvtps_pd(_mm256_castps256_ps128(a.lo)));
  _mm256_store_pd(out + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(a.lo, 1)));
  _mm256_store_pd(out + 8, _mm256_cvtps_pd(_mm256_castps256_ps128(a.hi)));
  _mm256_store_pd(out + 12, _mm256_cvtps_pd(_mm256_extractf128_ps(a.hi, 1)));
}
// P·V: 4 heads' partial sums (8 ymm) + the value vector (2 ymm).
constexpr int kPvHeads = 4;

#include "kernels/cpu/attn_simd.inl"

}  // namespace
}  // namespace avx2_impl

const AttnIsa& attn_isa_avx2() {
  static const AttnIsa isa{avx2_impl::simd_attention_rows, avx2_impl::simd_indexer_scores};
  return isa;
}

const MatmulIsa& matmul_isa_avx2() {
  static const MatmulIsa isa{avx2_impl::simd_rows, avx2_impl::simd_rows_two_slices, avx2_impl::simd_scratch_floats,
                             avx2_impl::simd_fma_probe, avx2_impl::simd_read_probe, avx2_impl::no_bf16_dot};
  return isa;
}

}  // namespace dsv4::kernels::detail

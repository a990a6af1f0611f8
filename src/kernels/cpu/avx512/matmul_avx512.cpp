// AVX-512 (F, BW, VL, DQ) + F16C variant of matmul and of the attention-side kernels
// (sparse_attn.h): one zmm per 16-lane vector.
// Compiled with per-file -mavx512* flags (CMakeLists.txt); reached only through the dispatch table
// after __builtin_cpu_supports said yes. Numerics: the canonical order of matmul.h.
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
// shuffle); lane i = 4L + q then holds bytes 4q..4q+3 and a per-lane shift by 8L brings byte
// 4q + L down (+4 for its high nibble). vpermps reads only index bits 0..3, so no mask is needed.
// Two shuffles (the lookups) per 32 weights instead of three with a byte->dword expansion.
inline void dec_fp4_32(const uint8_t* p, const Fp4Tbl& t, V16& lo, V16& hi) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i sh_lo = _mm512_set_epi32(24, 24, 24, 24, 16, 16, 16, 16, 8, 8, 8, 8, 0, 0, 0, 0);
  const __m512i sh_hi = _mm512_set_epi32(28, 28, 28, 28, 20, 20, 20, 20, 12, 12, 12, 12, 4, 4, 4, 4);
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
                             avx512_impl::simd_fma_probe, avx512_impl::simd_read_probe};
  return isa;
}

const AttnIsa& attn_isa_avx512() {
  static const AttnIsa isa{avx512_impl::simd_attention_rows, avx512_impl::simd_indexer_scores};
  return isa;
}

}  // namespace dsv4::kernels::detail

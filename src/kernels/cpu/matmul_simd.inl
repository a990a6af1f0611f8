// The SIMD matmul, written once over a 16-lane f32 vector and compiled once per instruction set.
//
// Included by avx2/simd_avx2.cpp and avx512/simd_avx512.cpp inside an anonymous namespace of
// their own, after they define, for their vector width:
//   V16 v_zero(); V16 v_load(const float*); void v_store(float*, V16); V16 v_set1(float);
//   V16 v_mul(V16, V16); V16 v_fma(V16 a, V16 b, V16 c) /* a*b+c, one rounding */;
//   float v_reduce(V16)          /* lanes added l+8, l+4, l+2, l+1: the canonical tree */
//   void v_reduce_16(const V16* a, float* out)  /* out[i] = v_reduce(a[i]), i < 16, same bits */
//   void dec_fp8_32(const uint8_t*, V16& a, V16& b)   /* 32 E4M3 codes -> value * 2^-8 */
//   void dec_fp8_32_int(const uint8_t*, V16& a, V16& b)
//        /* the same codes -> value * 2^-120 by integer ops only; subnormal codes give f32
//           subnormals (used only where FMAs take those at full speed: Fp8Decode, matmul.h) */
//   Fp4Tbl fp4_tbl(float s)      /* the 16 E2M1 values times the block scale s */
//   void dec_fp4_32(const uint8_t*, const Fp4Tbl&, V16& lo, V16& hi)
//        /* 16 bytes; lane i of lo / hi = column 8*(i%4) + 4 + i/4 / 8*(i%4) + i/4 */
//   int fp4_dot_prepare(const float* x, int64_t T, int64_t K, uint16_t* xb)
//   template <int R, int T> bool mv_fp4_dot(const uint8_t* w, const uint8_t* s, int64_t K,
//                                           const uint16_t* xb, int e_lo, float* y, int64_t ldy)
//        /* the FP4 matvec on a BF16 dot product where the CPU has one (Fp4Dot, matmul.h):
//           prepare returns 0 where it may not run; mv_fp4_dot false for rows it may not take */
//   V16 dec_bf16_16(const uint16_t*);
//   void dec_e8m0_16(const uint8_t*, float* out)  /* 16 E8M0 codes -> f32, as e8m0_value */
//   constexpr int kGemmRows, kGemmTok  /* register tile of the GEMM micro-kernel */
//   V16 v_add(V16, V16);
//   void v_transpose16(V16* m)   /* 16 x 16 transpose: m[i] lane j <-> m[j] lane i */
// Nothing here may call an inline function defined in another header (its out-of-line copy
// would be compiled for this instruction set and could be picked by the linker for all callers).
//
// Two paths, bit-identical by construction (matmul.h's canonical order):
//  * matvec (n < kGemmMinN): each 32-column chunk of a weight row is decoded in registers and
//    used for up to kMvMaxTok tokens; kMvRows rows run interleaved to hide the FMA latency.
//    FP8 folds the block scale into the activations once per 128-row block (see fp8_prescale).
//  * GEMM (n >= kGemmMinN): weight rows are dequantised once into scratch (exact values,
//    canonical layout), a column chunk at a time, and reused for a block of kTokBlock tokens held
//    in L2, with a kGemmRows x kGemmTok register tile of accumulators (see rows_gemm).

constexpr int64_t kMvMaxTok = 4;
// Software prefetch distance of the bandwidth probe (machine_probe.cpp).
constexpr int64_t kPrefetchBytes = 2048;
// Matvec prefetch (FP8, FP4): a tile of R rows is one contiguous block of memory; while a tile is
// consumed, the next tile is prefetched front to back at the same pace, so it is in L1/L2 when its
// turn comes. Measured single-thread on the 2-core EPYC (Zen 5), cold weights, in a copy of the
// kernel: FP8 [1024, 4096] 14 -> 22 GB/s, FP4 [2048, 4096] 17.5 -> 20 GB/s against the previous
// 2 KiB-ahead prefetch on each row (which mostly fetched lines of rows the tile was reading
// anyway), and better than no software prefetch (FP8 20, FP4 19 GB/s). BF16/F32 rows (8-16 KiB)
// do best with the hardware prefetchers alone (27 GB/s; 20-22 with either software scheme), so
// they get none.
constexpr int kMvRows = 4;
// One token (decode) over FP8/BF16/F32: 8 rows interleaved, i.e. 8 weight streams in flight.
// Measured on the 2-core EPYC (single thread, cold FP8 [4096,4096], CPU time): 1.5x faster than
// 4 rows. FP4 keeps 4 (8 rows were slower cold: twice the streams, rows half as long).
constexpr int kMvRowsOneTok = 8;
constexpr int64_t kTokBlock = 48;   // 48 tokens x 4096 cols x 4 B = 768 KiB: the activations of
                                    // one token block stay in a 1 MiB L2 while the rows sweep.

inline float bits_as_f32(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
// spec §3.2 E8M0: 2^(e-127); e = 0 -> 2^-127 (0x00400000); e = 255 -> NaN.
inline float e8m0_value(uint8_t e) {
  return bits_as_f32(e == 0 ? 0x00400000u : e == 255 ? 0x7fc00000u : uint32_t(e) << 23);
}

// Calls f.operator()<R, T>() with R = r in [1, MaxR], T = t in [1, MaxT] as template arguments.
template <int MaxR, int MaxT, typename F>
inline void dispatch_rt(int r, int t, F& f) {
  if constexpr (MaxR > 1) {
    if (r < MaxR) return dispatch_rt<MaxR - 1, MaxT>(r, t, f);
  }
  if constexpr (MaxT > 1) {
    if (t < MaxT) return dispatch_rt<MaxR, MaxT - 1>(r, t, f);
  }
  f.template operator()<MaxR, MaxT>();
}

// FP4 canonical layout of one row of activations (matmul.h): per 32-column block, position i
// (< 16) takes column 8*(i%4) + 4 + i/4 and position 16 + i column 8*(i%4) + i/4 — the order
// dec_fp4_32 produces the weights in.
inline void permute_fp4_cols(const float* x, int64_t K, float* out) {
  for (int64_t b = 0; b < K; b += 32)
    for (int i = 0; i < 16; ++i) {
      out[b + i] = x[b + 8 * (i % 4) + 4 + i / 4];
      out[b + 16 + i] = x[b + 8 * (i % 4) + i / 4];
    }
}

// Exponent fields of the activations per token and 128-column block: those of the smallest and
// the largest nonzero |x| (kAllZero if there is none), or kNotNormal if one is subnormal,
// infinite or NaN. Computed once per call, so that fp8_prescale checks a whole block in O(1).
struct ExpRange {
  int16_t lo, hi;
};
constexpr ExpRange kAllZero{1000, -1000};   // passes every shift in fp8_prescale
constexpr ExpRange kNotNormal{-1000, 1000};  // passes none
inline void exp_ranges(const float* x, int64_t ldx, int64_t T, int64_t K, ExpRange* out) {
  typedef uint32_t U32x16 __attribute__((vector_size(64)));
  const int64_t kbs = (K + 127) / 128;
  for (int64_t j = 0; j < T; ++j)
    for (int64_t kb = 0; kb < kbs; ++kb) {
      U32x16 lo = U32x16{} + 255, hi = U32x16{}, bad = U32x16{};
      const int64_t k1 = K < kb * 128 + 128 ? K : kb * 128 + 128;
      for (int64_t k = kb * 128; k < k1; k += 16) {
        U32x16 u;
        __builtin_memcpy(&u, x + j * ldx + k, 64);
        const U32x16 f = (u >> 23) & 0xFF;
        const U32x16 nz = U32x16((u & 0x7FFFFFFF) != 0);
        bad |= nz & U32x16((f == 0) | (f == 255));
        lo = (nz & (f < lo)) ? f : lo;
        hi = (nz & (f > hi)) ? f : hi;
      }
      uint32_t l = 255, h = 0, b = 0;
      for (int i = 0; i < 16; ++i) {
        l = lo[i] < l ? lo[i] : l;
        h = hi[i] > h ? hi[i] : h;
        b |= bad[i];
      }
      out[j * kbs + kb] = b ? kNotNormal : h == 0 ? kAllZero : ExpRange{int16_t(l), int16_t(h)};
    }
}

// xp[j][k] = x[j][k] * c_kb with c_kb = 2^fold * s[kb] (s: the E8M0 scales of one 128-row
// block). dec_fp8_32 yields w * 2^-8 (fold 8), dec_fp8_32_int w * 2^-120 (fold 120), so
// (w * 2^-fold) * xp == (w * s) * x exactly and fma(w * 2^-fold, xp, acc) == fma(dequantised w,
// x, acc) bit for bit (an FMA rounds the exact product once, subnormal operands included), as
// long as every xp is exact: c_kb a normal f32 and every nonzero x normal with x * c_kb normal
// (range: exp_ranges of x). Returns false otherwise (before writing anything); the caller then
// takes another path. Real checkpoints have s <= 2^-6, so fold 120 overflows only for
// |x| >= 2^14.
inline bool fp8_prescale(const float* x, int64_t ldx, int64_t T, int64_t K, const uint8_t* s, uint32_t fold,
                         const ExpRange* range, float* xp) {
  const int64_t kbs = (K + 127) / 128;
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const int e = s[kb], d = e + int(fold) - 127;   // the exponent c_kb adds
    if (e + int(fold) > 254) return false;           // c_kb must be a normal f32
    for (int64_t j = 0; j < T; ++j)
      if (range[j * kbs + kb].lo + d < 1 || range[j * kbs + kb].hi + d > 254) return false;
  }
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const V16 c = v_set1(bits_as_f32(uint32_t(s[kb] + fold) << 23));  // e = 0: 2^(fold-127), as e8m0_value
    const int64_t k1 = K < kb * 128 + 128 ? K : kb * 128 + 128;
    for (int64_t j = 0; j < T; ++j)
      for (int64_t k = kb * 128; k < k1; k += 16) v_store(xp + j * K + k, v_mul(v_load(x + j * ldx + k), c));
  }
  return true;
}

// ---- matvec kernels: R rows x T tokens, y[j * ldy + i] ----

// Prefetches kBytes bytes from p on (whole lines).
template <int64_t kBytes>
inline void prefetch_span(const uint8_t* p) {
  #pragma GCC unroll 16
  for (int64_t l = 0; l < kBytes; l += 64) __builtin_prefetch(p + l);
}

// s: the scales of the rows' block, one per 2^shift columns (shift 7: 128x128 blocks, 5: 32x32);
// read only when not kPrescaled.
template <int R, int T, bool kPrescaled, bool kInteger = false>
void mv_fp8(const uint8_t* w, int64_t K, const uint8_t* s, int shift, const float* xs, int64_t ldx, float* y,
            int64_t ldy) {
  V16 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = v_zero();
  const uint8_t* next_tile = w + R * K;
  for (int64_t k = 0; k < K; k += 32) {
    V16 sv;
    if constexpr (!kPrescaled) sv = v_set1(e8m0_value(s[k >> shift]));
    prefetch_span<R * 32>(next_tile + k * R);   // the next tile, at the pace of this one
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      V16 a, b;
      static_assert(kPrescaled || !kInteger, "the integer decode is only used prescaled");
      if constexpr (kInteger) dec_fp8_32_int(w + i * K + k, a, b);
      else dec_fp8_32(w + i * K + k, a, b);
      if constexpr (!kPrescaled) {  // exact dequantisation: (w * 2^-8) * 2^8 * s
        a = v_mul(v_mul(a, v_set1(256.0f)), sv);
        b = v_mul(v_mul(b, v_set1(256.0f)), sv);
      }
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) {
        acc[i][j] = v_fma(a, v_load(xs + j * ldx + k), acc[i][j]);
        acc[i][j] = v_fma(b, v_load(xs + j * ldx + k + 16), acc[i][j]);
      }
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) y[j * ldy + i] = v_reduce(acc[i][j]);
}

template <int R, int T>
void mv_fp4(const uint8_t* w, const uint8_t* s, int64_t K, const float* xs, int64_t ldx, float* y,
            int64_t ldy) {
  V16 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = v_zero();
  const int64_t kb = K / 32;
  const uint8_t* next_tile = w + R * (K / 2);
  alignas(64) float sc[R][16];  // decoded E8M0 scales of the next 16 blocks of each row
  for (int64_t b0 = 0; b0 < kb; b0 += 16) {
    const int nb = int(kb - b0 < 16 ? kb - b0 : 16);
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      if (nb == 16) dec_e8m0_16(s + i * kb + b0, sc[i]);
      else
        #pragma GCC unroll 16
        for (int b = 0; b < nb; ++b) sc[i][b] = e8m0_value(s[i * kb + b0 + b]);
    }
    #pragma GCC unroll 16
    for (int b = 0; b < nb; ++b) {
      const int64_t k = 32 * (b0 + b);
      V16 xe[T], xo[T];
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) {
        xe[j] = v_load(xs + j * ldx + k);
        xo[j] = v_load(xs + j * ldx + k + 16);
      }
      prefetch_span<R * 16>(next_tile + (k / 2) * R);   // the next tile, at the pace of this one
      #pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        V16 lo, hi;
        dec_fp4_32(w + i * (K / 2) + k / 2, fp4_tbl(sc[i][b]), lo, hi);
        #pragma GCC unroll 16
        for (int j = 0; j < T; ++j) {
          acc[i][j] = v_fma(lo, xe[j], acc[i][j]);
          acc[i][j] = v_fma(hi, xo[j], acc[i][j]);
        }
      }
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) y[j * ldy + i] = v_reduce(acc[i][j]);
}

template <int R, int T, bool kBf16>
void mv_dense(const void* wv, int64_t K, const float* xs, int64_t ldx, float* y, int64_t ldy) {
  V16 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = v_zero();
  for (int64_t k = 0; k < K; k += 16) {
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      V16 a;
      if constexpr (kBf16) a = dec_bf16_16(static_cast<const uint16_t*>(wv) + i * K + k);
      else a = v_load(static_cast<const float*>(wv) + i * K + k);
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) acc[i][j] = v_fma(a, v_load(xs + j * ldx + k), acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) y[j * ldy + i] = v_reduce(acc[i][j]);
}

// Calls f.operator()<R, T>(r) over the rows [ra, rz) in tiles of up to kOneTokRows (T = 1) or
// kMvRows rows.
template <int kOneTokRows, typename F>
inline void matvec_row_tiles(int64_t ra, int64_t rz, int T, F& f) {
  const int step = T == 1 ? kOneTokRows : kMvRows;
  for (int64_t r = ra; r < rz; r += step) {
    const int rr = int(rz - r < step ? rz - r : step);
    auto g = [&]<int R, int TT>() { f.template operator()<R, TT>(r); };
    if (T == 1) dispatch_rt<kOneTokRows, 1>(rr, 1, g);
    else dispatch_rt<kMvRows, kMvMaxTok>(rr, T, g);
  }
}

// Calls f.operator()<R, T>(r, t) over tiles of up to kMvRows rows of [ra, rz) by up to kMvMaxTok
// tokens of [0, n), each row tile taking every token before the next, so that its weights
// (8 KiB of FP4, 16 KiB of FP8 at K = 4096) stay in L1 while the token groups pass.
template <typename F>
inline void row_tiles_all_tokens(int64_t ra, int64_t rz, int64_t n, F& f) {
  for (int64_t r = ra; r < rz; r += kMvRows) {
    const int rr = int(rz - r < kMvRows ? rz - r : kMvRows);
    for (int64_t t = 0; t < n; t += kMvMaxTok) {
      const int tt = int(n - t < kMvMaxTok ? n - t : kMvMaxTok);
      auto g = [&]<int R, int TT>() { f.template operator()<R, TT>(r, t); };
      dispatch_rt<kMvRows, kMvMaxTok>(rr, tt, g);
    }
  }
}

// FP4 rows [r0, r1) against n tokens xt (y[j * ld + r]): the BF16 dot product where it gives the
// canonical bits (e_lo > 0 from fp4_dot_prepare into xb, n x K words), else the FMA kernel on the
// activations in canonical order (permuted into xperm, n x K, once, when a tile first needs them);
// tiles as row_tiles_all_tokens.
void rows_fp4(const WeightView& w, const float* xt, int64_t n, float* yt, int64_t r0, int64_t r1, int e_lo,
              const uint16_t* xb, float* xperm) {
  const int64_t K = w.cols, ld = w.rows;
  const uint8_t* wb = static_cast<const uint8_t*>(w.data);
  bool permuted = false;
  auto f = [&]<int R, int TT>(int64_t r, int64_t t) {
    const uint8_t* wr = wb + r * (K / 2);
    const uint8_t* sr = w.scale + r * (K / 32);
    if (e_lo > 0 && mv_fp4_dot<R, TT>(wr, sr, K, xb + t * K, e_lo, yt + t * ld + r, ld)) return;
    if (!permuted) {
      for (int64_t j = 0; j < n; ++j) permute_fp4_cols(xt + j * K, K, xperm + j * K);
      permuted = true;
    }
    mv_fp4<R, TT>(wr, sr, K, xperm + t * K, K, yt + t * ld + r, ld);
  };
  row_tiles_all_tokens(r0, r1, n, f);
}

// Whether the FP8 dot product (mv_fp8_dot) gives the canonical bits for one 128-row block (E8M0
// scales s per 128 columns) and activations of biased exponents [f_lo, f_hi] (`range`, T x kbs):
// a scaled weight is a multiple of 2^(e-136) below 2^(e-118), an activation a multiple of
// 2^(f-134) below 2^(f-126); with e + f_lo >= 144 every product and partial sum is a multiple of
// 2^-126 (nothing inexact or subnormal), with e + f_hi <= 350 sums of up to 2^16 products stay
// below 2^128, and e in [10, 246] keeps every scaled weight a normal bf16 value.
inline bool fp8_dot_fits(const ExpRange* range, int64_t T, int64_t kbs, const uint8_t* s) {
  if (kbs > 512) return false;   // K > 2^16
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const int e = s[kb];
    if (e < 10 || e > 246) return false;
    for (int64_t j = 0; j < T; ++j)
      if (range[j * kbs + kb].lo + e < 144 || range[j * kbs + kb].hi + e > 350) return false;
  }
  return true;
}

// FP8 rows [ra, rz) of one 128-row block (scales s) against n tokens on the BF16 dot product
// (xb from fp8_dot_prepare; the caller checked fp8_dot_fits), in tiles of kFp8DotRows rows by up
// to kFp8DotTok tokens. Decoding a 32-weight chunk costs about seven integer ops and each token
// one vdpbf16ps, so the tile is wide in tokens: a 6-position verify chunk is one pass over the
// weights. Measured single-thread on the 2-core EPYC (Zen 5) under load, CPU time, FP8
// [4096 x 4096] warm: n = 6 1.25-1.43 ms against 1.55-1.67 ms in 4 x 4 tiles and 1.93-2.00 ms
// on the FMA kernel; n = 512 unchanged (184-197 GFLOP/s against 185).
constexpr int kFp8DotRows = 3, kFp8DotTok = 6;
inline void rows_fp8_dot(const uint8_t* wb, int64_t K, const uint8_t* s, const uint16_t* xb, int64_t n, float* y,
                         int64_t ld, int64_t ra, int64_t rz) {
  for (int64_t r = ra; r < rz; r += kFp8DotRows) {
    const int rr = int(rz - r < kFp8DotRows ? rz - r : kFp8DotRows);
    for (int64_t t = 0; t < n; t += kFp8DotTok) {
      const int tt = int(n - t < kFp8DotTok ? n - t : kFp8DotTok);
      auto g = [&]<int R, int TT>() { mv_fp8_dot<R, TT>(wb + r * K, K, s, xb + t * K, y + t * ld + r, ld); };
      dispatch_rt<kFp8DotRows, kFp8DotTok>(rr, tt, g);
    }
  }
}

// FP8 with square scale blocks smaller than 128 (V4.1: 32x32, v4.1 §3.2), n < kGemmMinN tokens:
// the exact-dequantisation FMA kernel, row block by row block (its scales, one per block of
// columns), in the canonical order like every other path. No prescaled or BF16-dot variant (those
// fold one scale per 128 columns into the activations).
void rows_fp8_small_blocks(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  const int64_t K = w.cols, ld = w.rows, B = w.block, kbs = (K + B - 1) / B;
  const int shift = __builtin_ctzll(uint64_t(B));
  const uint8_t* wb = static_cast<const uint8_t*>(w.data);
  for (int64_t rb = r0 / B; rb * B < r1; ++rb) {
    const int64_t ra = rb * B > r0 ? rb * B : r0, rz = rb * B + B < r1 ? rb * B + B : r1;
    const uint8_t* s = w.scale + rb * kbs;
    for (int64_t t0 = 0; t0 < n; t0 += kMvMaxTok) {
      const int T = int(n - t0 < kMvMaxTok ? n - t0 : kMvMaxTok);
      const float* xt = x + t0 * K;
      float* yt = y + t0 * ld;
      auto f = [&]<int R, int TT>(int64_t r) { mv_fp8<R, TT, false>(wb + r * K, K, s, shift, xt, K, yt + r, ld); };
      matvec_row_tiles<kMvRowsOneTok>(ra, rz, T, f);
    }
  }
}

// The matvec path for n < kGemmMinN tokens, in groups of up to kMvMaxTok tokens. Every weight
// tile is read from memory once for all the groups: a speculative verify chunk (up to 6
// positions) or a batch of 5-7 decoding sequences would otherwise stream every matrix once per
// group, i.e. twice (issue #14: the 6-position verify step read the attention projections and
// the 1 GB head twice). Each (rows, group) product is the same call as for a lone group, so
// the bits do not change.
//  * BF16 / F32: each row tile takes every group before the next tile (row_tiles_all_tokens);
//    a lone group keeps its own tiling (8 rows at one token).
//  * FP4: rows_fp4 already walks row tiles over all tokens.
//  * FP8: each 128-row block (its scales fold into the activations) takes every group while
//    it is in L2 (at K = 4096, 512 KiB).
// Scratch: the prescaled or permuted activations of the tokens first (n x K floats), then their
// bf16 words (n x K words), then (FP8) their exponent ranges (n x K/128); simd_scratch_floats
// covers n < kGemmMinN.
void rows_matvec(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                 float* scratch) {
  const int64_t K = w.cols, ld = w.rows;
  const uint8_t* wb = static_cast<const uint8_t*>(w.data);
  switch (w.dtype) {
    case DType::f32:
    case DType::bf16: {
      const size_t esz = w.dtype == DType::f32 ? 4 : 2;
      auto mv = [&]<int R, int TT>(int64_t r, int64_t t) {
        if (w.dtype == DType::bf16) mv_dense<R, TT, true>(wb + r * K * esz, K, x + t * K, K, y + t * ld + r, ld);
        else mv_dense<R, TT, false>(wb + r * K * esz, K, x + t * K, K, y + t * ld + r, ld);
      };
      if (n <= kMvMaxTok) {
        auto f = [&]<int R, int TT>(int64_t r) { mv.template operator()<R, TT>(r, 0); };
        matvec_row_tiles<kMvRowsOneTok>(r0, r1, int(n), f);
      } else {
        row_tiles_all_tokens(r0, r1, n, mv);
      }
      break;
    }
    case DType::fp4_e2m1: {
      uint16_t* xb = reinterpret_cast<uint16_t*>(scratch + n * K);
      rows_fp4(w, x, n, y, r0, r1, fp4_dot_prepare(x, n, K, xb), xb, scratch);
      break;
    }
    case DType::fp8_e4m3: {
      if (w.block != 128) {
        rows_fp8_small_blocks(w, x, n, y, r0, r1);
        break;
      }
      const int64_t kbs = (K + 127) / 128;
      uint16_t* xb = reinterpret_cast<uint16_t*>(scratch + n * K);
      ExpRange* range = reinterpret_cast<ExpRange*>(scratch + n * K + n * K / 2);
      exp_ranges(x, K, n, K, range);
      // Several tokens (a verify chunk, a few decoding sequences) turn the product compute-bound
      // on a few cores: the BF16 dot product where it gives the canonical bits, as in the GEMM.
      // One token keeps the FMA kernel, which keeps up with memory there.
      const bool dot = n >= kFp8DotMinN && fp8_dot_prepare(x, n, K, xb);
      for (int64_t rb = r0 / 128; rb * 128 < r1; ++rb) {
        const int64_t ra = rb * 128 > r0 ? rb * 128 : r0;
        const int64_t rz = rb * 128 + 128 < r1 ? rb * 128 + 128 : r1;
        const uint8_t* s = w.scale + rb * kbs;
        if (dot && fp8_dot_fits(range, n, kbs, s)) {
          rows_fp8_dot(wb, K, s, xb, n, y, ld, ra, rz);
          continue;
        }
        for (int64_t t0 = 0; t0 < n; t0 += kMvMaxTok) {
          const int T = int(n - t0 < kMvMaxTok ? n - t0 : kMvMaxTok);
          const float* xt = x + t0 * K;
          float* yt = y + t0 * ld;
          const ExpRange* rt = range + t0 * kbs;
          // The integer decode where the CPU takes subnormal FMA operands at full speed
          // (matmul_isa.h), else (or if its fold does not fit) the f16 one; all give the same bits.
          const bool integer = g_fp8_integer_decode.load(std::memory_order_relaxed) &&
                               fp8_prescale(xt, K, T, K, s, 120, rt, scratch);
          const bool pre = integer || fp8_prescale(xt, K, T, K, s, 8, rt, scratch);
          auto f = [&]<int R, int TT>(int64_t r) {
            if (integer) mv_fp8<R, TT, true, true>(wb + r * K, K, s, 7, scratch, K, yt + r, ld);
            else if (pre) mv_fp8<R, TT, true>(wb + r * K, K, s, 7, scratch, K, yt + r, ld);
            else mv_fp8<R, TT, false>(wb + r * K, K, s, 7, xt, K, yt + r, ld);
          };
          matvec_row_tiles<kMvRowsOneTok>(ra, rz, T, f);
        }
      }
      break;
    }
    default: break;
  }
}

// ---- GEMM: dequantise a tile of rows once, reuse it for many tokens ----

// Columns [k0, k0 + kn) of rows [r, r + R) of W as exact f32 values in canonical layout:
// wt[i * ldw + p] (k0 and kn multiples of 32, or of 16 for BF16/F32).
void decode_tile(const WeightView& w, int64_t r, int R, int64_t k0, int64_t kn, float* wt, int64_t ldw) {
  const int64_t K = w.cols, k1 = k0 + kn;
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* out = wt + i * ldw - k0;
    switch (w.dtype) {
      case DType::f32: {
        const float* p = static_cast<const float*>(w.data) + (r + i) * K;
        for (int64_t k = k0; k < k1; k += 16) v_store(out + k, v_load(p + k));
        break;
      }
      case DType::bf16: {
        const uint16_t* p = static_cast<const uint16_t*>(w.data) + (r + i) * K;
        for (int64_t k = k0; k < k1; k += 16) v_store(out + k, dec_bf16_16(p + k));
        break;
      }
      case DType::fp8_e4m3: {
        const uint8_t* p = static_cast<const uint8_t*>(w.data) + (r + i) * K;
        const int64_t B = w.block;   // 128, or 32 (V4.1); k0 and k are multiples of 32
        const uint8_t* s = w.scale + ((r + i) / B) * ((K + B - 1) / B);
        for (int64_t k = k0; k < k1; k += 32) {
          const V16 sv = v_set1(e8m0_value(s[k / B]));
          V16 a, b;
          dec_fp8_32(p + k, a, b);
          v_store(out + k, v_mul(v_mul(a, v_set1(256.0f)), sv));
          v_store(out + k + 16, v_mul(v_mul(b, v_set1(256.0f)), sv));
        }
        break;
      }
      case DType::fp4_e2m1: {
        const uint8_t* p = static_cast<const uint8_t*>(w.data) + (r + i) * (K / 2);
        const uint8_t* s = w.scale + (r + i) * (K / 32);
        for (int64_t b = k0 / 32; b < k1 / 32; ++b) {
          V16 lo, hi;
          dec_fp4_32(p + 16 * b, fp4_tbl(e8m0_value(s[b])), lo, hi);
          v_store(out + 32 * b, lo);
          v_store(out + 32 * b + 16, hi);
        }
        break;
      }
      default: break;
    }
  }
}

// Whole rows: wt[i * K + p].
void decode_tile(const WeightView& w, int64_t r, int R, float* wt) { decode_tile(w, r, R, 0, w.cols, wt, w.cols); }

// The R x T accumulators of one column chunk [k, k + kn): wt[i * ldw + p] and xs[j * ldx + p]
// start at the chunk. They start from zero on the first chunk and from carry (16 floats each)
// after it; on the last chunk they are reduced into y, else saved in carry. Every lane's fma
// chain thus runs over k in order, whatever the chunking.
template <int R, int T>
void gemm_micro(const float* wt, int64_t ldw, int64_t kn, const float* xs, int64_t ldx, float* carry, bool first,
                bool last, float* y, int64_t ldy) {
  V16 acc[R][T];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) acc[i][j] = first ? v_zero() : v_load(carry + 16 * (i * T + j));
  for (int64_t k = 0; k < kn; k += 16) {
    V16 wv[R];
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i) wv[i] = v_load(wt + i * ldw + k);
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) {
      const V16 xv = v_load(xs + j * ldx + k);
      #pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i][j] = v_fma(wv[i], xv, acc[i][j]);
    }
  }
  if (!last) {
    #pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) v_store(carry + 16 * (i * T + j), acc[i][j]);
    return;
  }
  // The R x T sums, 16 at a time through the transposed reduction (padded with zero vectors).
  constexpr int kPad = (R * T + 15) / 16 * 16;
  V16 flat[kPad];
  alignas(64) float sums[kPad];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) flat[i * T + j] = acc[i][j];
  #pragma GCC unroll 16
  for (int p = R * T; p < kPad; ++p) flat[p] = v_zero();
  #pragma GCC unroll 4
  for (int g = 0; g < kPad; g += 16) v_reduce_16(flat + g, sums + g);
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < T; ++j) y[j * ldy + i] = sums[i * T + j];
}

// GEMM blocking: kGemmGroup rows (kGemmGroup / kGemmRows register tiles) are decoded kGemmChunk
// columns at a time (32 KiB, in L1) and run against every token of the block before the next
// chunk, with the tiles of one token group back to back so that its activations are read from L2
// once per chunk for all of them; the accumulators are carried from chunk to chunk (gemm_micro),
// so chunking changes no result. Measured on the 2-core EPYC (Zen 5), one thread, n = 512, median
// of 8 alternating runs, % of the FMA peak: FP4 [2048 x 4096] 49.6 -> 65.6, BF16 [4096 x 4096]
// 52.9 -> 58.4, FP8 [4096 x 4096] 52.8 -> 56.3, FP8 [32768 x 1024] 54.8 -> 53.7 (whole rows
// before; 256- and 1024-column chunks and groups of 2 tiles measured lower).
constexpr int kGemmGroup = 4 * kGemmRows;
constexpr int64_t kGemmChunk = 512;
constexpr int64_t kTokGroups = (kTokBlock + kGemmTok - 1) / kGemmTok;
constexpr int64_t kGemmCarryFloats = kGemmGroup * kTokGroups * kGemmTok * 16;

// Rows [ra, rz) of the f32 GEMM for TB tokens xs (canonical layout); y[j * ld + r].
void gemm_f32_rows(const WeightView& w, const float* xs, int64_t TB, float* y, int64_t ra, int64_t rz, float* wt,
                   float* carry) {
  const int64_t K = w.cols, ld = w.rows;
  for (int64_t r = ra; r < rz; r += kGemmGroup) {
    const int rg = int(rz - r < kGemmGroup ? rz - r : kGemmGroup);
    for (int64_t kc = 0; kc < K; kc += kGemmChunk) {
      const int64_t kn = K - kc < kGemmChunk ? K - kc : kGemmChunk;
      decode_tile(w, r, rg, kc, kn, wt, kGemmChunk);
      for (int64_t t = 0; t < TB; t += kGemmTok) {
        const int tt = int(TB - t < kGemmTok ? TB - t : kGemmTok);
        for (int i0 = 0; i0 < rg; i0 += kGemmRows) {
          const int rr = rg - i0 < kGemmRows ? rg - i0 : kGemmRows;
          float* c = carry + ((i0 / kGemmRows) * kTokGroups + t / kGemmTok) * (kGemmRows * kGemmTok * 16);
          auto f = [&]<int R, int TT>() {
            gemm_micro<R, TT>(wt + i0 * kGemmChunk, kGemmChunk, kn, xs + t * K + kc, K, c, kc == 0, kc + kn >= K,
                              y + t * ld + r + i0, ld);
          };
          dispatch_rt<kGemmRows, kGemmTok>(rr, tt, f);
        }
      }
    }
  }
}

void rows_gemm(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
               float* scratch) {
  const int64_t K = w.cols, ld = w.rows, kbs = (K + 127) / 128;
  float* wt = scratch;                           // kGemmGroup x kGemmChunk
  float* carry = wt + kGemmGroup * kGemmChunk;   // kGemmCarryFloats
  float* xperm = carry + kGemmCarryFloats;       // kTokBlock x K (FP4), kTokBlock x kbs ExpRange (FP8)
  uint16_t* xb = reinterpret_cast<uint16_t*>(xperm + kTokBlock * K);   // kTokBlock x K words
  for (int64_t tb = 0; tb < n; tb += kTokBlock) {
    const int64_t TB = n - tb < kTokBlock ? n - tb : kTokBlock;
    const float* xs = x + tb * K;
    float* yb = y + tb * ld;
    if (w.dtype == DType::fp4_e2m1) {
      // bf16-exact activations (FP8-quantised, spec §4.2): FP4 on the BF16 dot product, which
      // multiplies two weights per lane and decodes them in registers. Measured on the 2-core
      // EPYC (Zen 5), FP4 [2048 x 4096], n = 512, one thread: 46-67 % of the f32 FMA peak through
      // the f32 tiles, 120-135 % this way; flash2 prefill of 512 tokens 99-111 -> 128-135 tok/s.
      const int e_lo = fp4_dot_prepare(xs, TB, K, xb);
      if (e_lo > 0) {
        rows_fp4(w, xs, TB, yb, r0, r1, e_lo, xb, xperm);
        continue;
      }
      for (int64_t j = 0; j < TB; ++j) permute_fp4_cols(xs + j * K, K, xperm + j * K);
      gemm_f32_rows(w, xperm, TB, yb, r0, r1, wt, carry);
      continue;
    }
    if (w.dtype == DType::fp8_e4m3 && w.block == 128 && fp8_dot_prepare(xs, TB, K, xb)) {
      // FP8 on the BF16 dot product too, per 128-row block where fp8_dot_fits, in the tiles of
      // row_tiles_all_tokens. Gemm512 FP8 (codes spread
      // like a real checkpoint's), one thread, 5 alternating rounds: 42-60 % of the f32 FMA peak
      // through the f32 tiles, 76-85 % this way; flash2 prefill of 512 tokens 122-127 -> 132-145.
      ExpRange* range = reinterpret_cast<ExpRange*>(xperm);
      exp_ranges(xs, K, TB, K, range);
      const uint8_t* wb = static_cast<const uint8_t*>(w.data);
      for (int64_t rb = r0 / 128; rb * 128 < r1; ++rb) {
        const int64_t ra = rb * 128 > r0 ? rb * 128 : r0, rz = rb * 128 + 128 < r1 ? rb * 128 + 128 : r1;
        const uint8_t* s = w.scale + rb * kbs;
        if (!fp8_dot_fits(range, TB, kbs, s)) {
          gemm_f32_rows(w, xs, TB, yb, ra, rz, wt, carry);
          continue;
        }
        rows_fp8_dot(wb, K, s, xb, TB, yb, ld, ra, rz);
      }
      continue;
    }
    gemm_f32_rows(w, xs, TB, yb, r0, r1, wt, carry);
  }
}

void simd_rows(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
               float* scratch) {
  if (n < kGemmMinN) rows_matvec(w, x, n, y, r0, r1, scratch);
  else rows_gemm(w, x, n, y, r0, r1, scratch);
}

int64_t simd_scratch_floats(int64_t cols) {
  // matvec: up to kGemmMinN - 1 rows of f32 activations, then as many rows of bf16 words, then
  // (FP8) their ExpRange per 128 columns.
  const int64_t mv = (kGemmMinN - 1) * (cols + cols / 2 + (cols + 127) / 128);
  const int64_t gemm = kGemmGroup * kGemmChunk + kGemmCarryFloats + kTokBlock * cols + kTokBlock * cols / 2;
  return mv > gemm ? mv : gemm;
}

// ---- SumOrder::two_slices (matmul.h) ----
// Each output is two fma chains over alternate runs of 8 positions, so a chain cannot be split
// over lanes: lanes are output rows at small n (a 16 x 16 tile of weights transposed in registers)
// and tokens at large n (activations transposed once per block of 16 tokens). Both walk every
// chain in the same order, so n never changes a result.

// Rows [0, 16) of w (lanes) for T tokens; y[j * ldy + l].
template <int T, bool kBf16>
void two_slices_rows16(const void* w, int64_t K, const float* x, float* y, int64_t ldy) {
  V16 acc[T][2];
  #pragma GCC unroll 16
  for (int j = 0; j < T; ++j) acc[j][0] = acc[j][1] = v_zero();
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    V16 col[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if constexpr (kBf16) col[i] = dec_bf16_16(static_cast<const uint16_t*>(w) + i * K + k0);
      else col[i] = v_load(static_cast<const float*>(w) + i * K + k0);
    }
    v_transpose16(col);
    #pragma GCC unroll 16
    for (int kk = 0; kk < 16; ++kk)
      #pragma GCC unroll 16
      for (int j = 0; j < T; ++j) acc[j][kk >> 3] = v_fma(col[kk], v_set1(x[j * K + k0 + kk]), acc[j][kk >> 3]);
  }
  #pragma GCC unroll 16
  for (int j = 0; j < T; ++j) v_store(y + j * ldy, v_add(acc[j][0], acc[j][1]));
}

// R rows of exact weights wt[i * K + k] against 16 tokens xt[k * 16 + lane]; T valid tokens.
template <int R>
void two_slices_tok16(const float* wt, int64_t K, const float* xt, float* y, int64_t ldy, int64_t T) {
  V16 acc[R][2];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = v_zero();
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    #pragma GCC unroll 2
    for (int s = 0; s < 2; ++s) {
      #pragma GCC unroll 8
      for (int64_t k = k0 + 8 * s; k < k0 + 8 * s + 8; ++k) {
        const V16 xv = v_load(xt + k * 16);
        #pragma GCC unroll 16
        for (int i = 0; i < R; ++i) acc[i][s] = v_fma(v_set1(wt[i * K + k]), xv, acc[i][s]);
      }
    }
  }
  alignas(64) float out[16];
  #pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    v_store(out, v_add(acc[i][0], acc[i][1]));
    for (int64_t l = 0; l < T; ++l) y[l * ldy + i] = out[l];
  }
}

constexpr int kTwoSlicesRows = 2 * kGemmRows;

void simd_rows_two_slices(const WeightView& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1,
                          float* scratch) {
  const int64_t K = w.cols, ld = w.rows;
  const bool bf16 = w.dtype == DType::bf16;
  const size_t esz = bf16 ? 2 : 4;
  if (n < kGemmMinN) {
    const uint8_t* wb = static_cast<const uint8_t*>(w.data);
    int64_t r = r0;
    for (; r + 16 <= r1; r += 16)
      for (int64_t t0 = 0; t0 < n; t0 += kMvMaxTok) {
        const int T = int(n - t0 < kMvMaxTok ? n - t0 : kMvMaxTok);
        auto f = [&]<int R, int TT>() {
          if (bf16) two_slices_rows16<TT, true>(wb + r * K * esz, K, x + t0 * K, y + t0 * ld + r, ld);
          else two_slices_rows16<TT, false>(wb + r * K * esz, K, x + t0 * K, y + t0 * ld + r, ld);
        };
        dispatch_rt<1, kMvMaxTok>(1, T, f);
      }
    matmul_two_slices_rows(w, x, n, y, r, r1, scratch);
    return;
  }
  static_assert(16 + kTwoSlicesRows <= kTokBlock, "fits simd_scratch_floats");
  float* xt = scratch;            // K x 16
  float* wt = scratch + 16 * K;   // kTwoSlicesRows x K
  for (int64_t t0 = 0; t0 < n; t0 += 16) {
    const int64_t T = n - t0 < 16 ? n - t0 : 16;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < 16; ++l) xt[k * 16 + l] = l < T ? x[(t0 + l) * K + k] : 0.0f;
    for (int64_t r = r0; r < r1; r += kTwoSlicesRows) {
      const int rr = int(r1 - r < kTwoSlicesRows ? r1 - r : kTwoSlicesRows);
      decode_tile(w, r, rr, wt);
      auto f = [&]<int R, int TT>() { two_slices_tok16<R>(wt, K, xt, y + t0 * ld + r, ld, T); };
      dispatch_rt<kTwoSlicesRows, 1>(rr, 1, f);
    }
  }
}

// Ten independent FMA chains (more than latency x throughput on current cores).
double simd_fma_probe(int64_t iters, float multiplier) {
  V16 a[10];
  for (int i = 0; i < 10; ++i) a[i] = v_set1(1.0f + 0.01f * float(i));
  const V16 m = v_set1(multiplier), c = v_set1(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 10
    for (int i = 0; i < 10; ++i) a[i] = v_fma(a[i], m, c);
  float sink = 0.0f;
  for (int i = 0; i < 10; ++i) sink += v_reduce(a[i]);
  volatile float keep = sink;
  (void)keep;
  return double(iters) * 10 * 16 * 2;
}

float simd_read_probe(const float* p, int64_t n) {
  V16 a0 = v_zero(), a1 = v_zero(), a2 = v_zero(), a3 = v_zero();
  const V16 one = v_set1(1.0f);
  for (int64_t i = 0; i < n; i += 64) {
    __builtin_prefetch(p + i + kPrefetchBytes / 4);
    a0 = v_fma(v_load(p + i), one, a0);
    a1 = v_fma(v_load(p + i + 16), one, a1);
    a2 = v_fma(v_load(p + i + 32), one, a2);
    a3 = v_fma(v_load(p + i + 48), one, a3);
  }
  V16 s[4] = {a0, a1, a2, a3};
  return v_reduce(s[0]) + v_reduce(s[1]) + v_reduce(s[2]) + v_reduce(s[3]);
}

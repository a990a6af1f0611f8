// The SIMD attention-side kernels (sparse_attn.h), written once over the 16-lane vector of
// matmul_simd.inl and compiled per instruction set. Included after matmul_simd.inl; needs, on
// top of its primitives:
//   V16 v_add(V16, V16); V16 v_div(V16, V16);
//   V16 v_relu(V16 s)            /* (s < 0) ? +0 : s per lane, i.e. std::max(s, 0.0f) */
//   V16 v_round_bf16(V16)        /* round_bf16 per lane, NaN included */
//   V16 v_gather_stride(const float* p, int32_t stride)   /* lane l = p[l * stride] */
//   VD8 (8 doubles): vd_zero, vd_load, vd_store, vd_set1, vd_add, vd_mul
//   void v16_to_f64(V16, double* out)   /* the 16 lanes as doubles (exact) */
//   constexpr int kIdxEntries    /* entries per register tile of the indexer */
//   constexpr int kPvHeads       /* heads whose P·V partial sums stay in registers */
// Every value is computed with the same operations in the same order as the scalar definitions
// in sparse_attn.cpp (multiply then add, never fused: these files build with -ffp-contract=off).

// round_bf16 of core/dtype.h, restated here (see matmul_simd.inl on inline functions of other
// headers): round to nearest even, NaN kept quiet.
inline float round_bf16_scalar(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bits_as_f32(((u >> 16) | 0x40u) << 16);
  u += 0x7fffu + ((u >> 16) & 1u);
  return bits_as_f32((u >> 16) << 16);
}

constexpr int64_t kAttnBlock = 64;   // online-softmax block of the reference kernel (spec §5.7)
constexpr int kAttnHeads = 8;        // heads per pass: the score sums run as 8 double lanes
constexpr int kScoreEntries = 4;     // entries per score tile (4 accumulators of 8 doubles)

// Heads [h, h + G) over all n entries, in the orders of sparse_attn.cpp's attend_head:
//  * scores: per (head, entry) one sequential double sum over the dim (dot_accurate), computed
//    with lanes = heads (qT holds the G queries transposed, as doubles) for kScoreEntries entries
//    at a time, each entry's key converted to doubles once per tile;
//  * probabilities: scalar (libm expf, bf16 rounding), the block sum via block_prob_sum;
//  * P·V: per element, entries left to right, with lanes = 16 elements and kPvHeads heads'
//    partial sums in registers, then acc = acc·rescale + block sum.
template <int G>
void attend_heads(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim, float scale,
                  const float* sinks, float* acc, float* out) {
  alignas(64) double qT[kMaxAttnDim * 8];
  alignas(64) double kd[kScoreEntries * kMaxAttnDim];
  alignas(64) double zd[kScoreEntries][8];
  float z[G][kAttnBlock], p[G][kAttnBlock], pb[G][kAttnBlock];
  float m[G], denom[G], m_new[G], rescale[G];
  for (int64_t i = 0; i < dim; ++i)
    for (int g = 0; g < 8; ++g) qT[i * 8 + g] = g < G ? double(q[g * dim + i]) : 0.0;
  for (int g = 0; g < G; ++g) {
    m[g] = -__builtin_inff();
    denom[g] = 0.0f;
    for (int64_t d = 0; d < dim; d += 16) v_store(acc + g * dim + d, v_zero());
  }
  for (int64_t b0 = 0; b0 < n;) {
    const bool window = b0 < n_window;
    const int64_t nb = (window ? n_window : n) - b0 < kAttnBlock ? (window ? n_window : n) - b0 : kAttnBlock;
    // Scores of the block.
    for (int64_t e0 = 0; e0 < nb; e0 += kScoreEntries) {
      for (int e = 0; e < kScoreEntries; ++e) {
        const uint16_t* r = rows[b0 + (e0 + e < nb ? e0 + e : nb - 1)];
        for (int64_t k = 0; k < dim; k += 16) v16_to_f64(dec_bf16_16(r + k), kd + e * dim + k);
      }
      VD8 sacc[kScoreEntries];
      #pragma GCC unroll 4
      for (int e = 0; e < kScoreEntries; ++e) sacc[e] = vd_zero();
      for (int64_t i = 0; i < dim; ++i) {
        const VD8 qv = vd_load(qT + i * 8);
        #pragma GCC unroll 4
        for (int e = 0; e < kScoreEntries; ++e) sacc[e] = vd_add(sacc[e], vd_mul(qv, vd_set1(kd[e * dim + i])));
      }
      for (int e = 0; e < kScoreEntries; ++e) vd_store(zd[e], sacc[e]);
      for (int e = 0; e < kScoreEntries && e0 + e < nb; ++e)
        for (int g = 0; g < G; ++g) z[g][e0 + e] = float(zd[e][g]) * scale;
    }
    // Block maxima, probabilities (padded to 64 in the window part), denominators.
    const int64_t padded = window ? kAttnBlock : nb;
    for (int g = 0; g < G; ++g) {
      float bmax = -__builtin_inff();
      for (int64_t i = 0; i < nb; ++i) bmax = bmax < z[g][i] ? z[g][i] : bmax;   // std::max(bmax, z)
      m_new[g] = m[g] < bmax ? bmax : m[g];
      rescale[g] = __builtin_expf(m[g] - m_new[g]);
      for (int64_t i = 0; i < padded; ++i) {
        p[g][i] = i < nb ? __builtin_expf(z[g][i] - m_new[g]) : 0.0f;
        pb[g][i] = round_bf16_scalar(p[g][i]);
      }
      denom[g] = denom[g] * rescale[g] + block_prob_sum(p[g], padded);
    }
    // P·V, folded into the running sums.
    for (int g0 = 0; g0 < G; g0 += kPvHeads) {
      const int gn = G - g0 < kPvHeads ? G - g0 : kPvHeads;
      for (int64_t d = 0; d < dim; d += 16) {
        V16 sv[kPvHeads];
        #pragma GCC unroll 8
        for (int g = 0; g < kPvHeads; ++g) sv[g] = v_zero();
        for (int64_t i = 0; i < nb; ++i) {
          const V16 v = dec_bf16_16(rows[b0 + i] + d);
          #pragma GCC unroll 8
          for (int g = 0; g < kPvHeads; ++g)
            if (g < gn) sv[g] = v_add(sv[g], v_mul(v_set1(pb[g0 + g][i]), v));
        }
        for (int g = 0; g < gn; ++g) {
          float* a = acc + (g0 + g) * dim + d;
          v_store(a, v_add(v_mul(v_load(a), v_set1(rescale[g0 + g])), sv[g]));
        }
      }
    }
    for (int g = 0; g < G; ++g) m[g] = m_new[g];
    b0 += nb;
  }
  for (int g = 0; g < G; ++g) {
    denom[g] += __builtin_expf(sinks[g] - m[g]);
    const V16 dv = v_set1(denom[g]);
    for (int64_t d = 0; d < dim; d += 16)
      v_store(out + g * dim + d, v_round_bf16(v_div(v_load(acc + g * dim + d), dv)));
  }
}

void simd_attention_rows(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, int64_t h0, int64_t h1, float* out) {
  alignas(64) float acc[kAttnHeads * kMaxAttnDim];
  for (int64_t h = h0; h < h1; h += kAttnHeads) {
    const int G = int(h1 - h < kAttnHeads ? h1 - h : kAttnHeads);
    auto f = [&]<int GG, int>() {
      attend_heads<GG>(q + h * dim, rows, n_window, n, dim, scale, sinks + h, acc, out + h * dim);
    };
    dispatch_rt<kAttnHeads, 1>(G, 1, f);
  }
}

// Indexer: lanes = heads (16 per vector, padded with zero queries and weights), kIdxEntries
// entries per tile; the per-entry head sums then run with lanes = entries, heads in order.
template <int HV, int E>
void index_tile(const float* qT, int64_t hp, int64_t hv0, int64_t dim, const float* kf, const float* wpad,
                float* terms /* [E][hp] */) {
  V16 acc[E][HV];
  #pragma GCC unroll 16
  for (int e = 0; e < E; ++e)
    #pragma GCC unroll 4
    for (int v = 0; v < HV; ++v) acc[e][v] = v_zero();
  for (int64_t i = 0; i < dim; ++i) {
    V16 qv[HV];
    #pragma GCC unroll 4
    for (int v = 0; v < HV; ++v) qv[v] = v_load(qT + i * hp + (hv0 + v) * 16);
    #pragma GCC unroll 16
    for (int e = 0; e < E; ++e) {
      const V16 kb = v_set1(kf[e * dim + i]);
      #pragma GCC unroll 4
      for (int v = 0; v < HV; ++v) acc[e][v] = v_add(acc[e][v], v_mul(qv[v], kb));
    }
  }
  #pragma GCC unroll 16
  for (int e = 0; e < E; ++e)
    #pragma GCC unroll 4
    for (int v = 0; v < HV; ++v) {
      const V16 s = v_relu(v_round_bf16(acc[e][v]));
      v_store(terms + e * hp + (hv0 + v) * 16, v_round_bf16(v_mul(s, v_load(wpad + (hv0 + v) * 16))));
    }
}

void simd_indexer_scores(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys, int64_t j0,
                         int64_t j1, float* scores) {
  const int64_t hp = (heads + 15) / 16 * 16, hvs = hp / 16;
  alignas(64) float qT[kMaxIndexQuery];        // [dim][hp]
  alignas(64) float wpad[kMaxIndexHeads];
  alignas(64) float terms[16 * kMaxIndexHeads];  // [16 entries][hp]
  for (int64_t i = 0; i < dim; ++i)
    for (int64_t h = 0; h < hp; ++h) qT[i * hp + h] = h < heads ? q[h * dim + i] : 0.0f;
  for (int64_t h = 0; h < hp; ++h) wpad[h] = h < heads ? w[h] : 0.0f;
  // Keys of one tile as f32 (bf16 -> f32 is exact); a partial last tile repeats its last key.
  constexpr int E = kIdxEntries;
  alignas(64) float kf_stack[E * 1024];
  for (int64_t i = 0; i < 16 * hp; ++i) terms[i] = 0.0f;   // rows of a partial tile stay defined
  for (int64_t jb = j0; jb < j1; jb += 16) {
    const int64_t nb = j1 - jb < 16 ? j1 - jb : 16;
    for (int64_t e0 = 0; e0 < nb; e0 += E) {
      for (int e = 0; e < E; ++e) {
        const int64_t j = jb + (e0 + e < nb ? e0 + e : nb - 1);
        const uint16_t* k = keys + j * dim;
        for (int64_t i = 0; i < dim; ++i) kf_stack[e * dim + i] = bits_as_f32(uint32_t(k[i]) << 16);
      }
      for (int64_t hv0 = 0; hv0 < hvs; hv0 += 4) {
        const int nv = int(hvs - hv0 < 4 ? hvs - hv0 : 4);
        auto f = [&]<int HV, int>() { index_tile<HV, E>(qT, hp, hv0, dim, kf_stack, wpad, terms + e0 * hp); };
        dispatch_rt<4, 1>(nv, 1, f);
      }
    }
    // total_j = Σ_h terms[j][h] in head order from +0, 16 entries per vector.
    V16 total = v_zero();
    for (int64_t h = 0; h < heads; ++h) total = v_add(total, v_gather_stride(terms + h, int32_t(hp)));
    alignas(64) float out[16];
    v_store(out, v_round_bf16(total));
    for (int64_t e = 0; e < nb; ++e) scores[jb + e] = out[e];
  }
}

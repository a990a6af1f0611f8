// Scalar definitions of the attention-side kernels (the generic variant of attn_isa.h) and the
// dispatch to the SIMD variants, which follow the matmul implementation in use (matmul.h).
#include "kernels/cpu/sparse_attn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/attn_isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::kernels {

namespace {
constexpr int64_t kBlock = 64;   // entries per online-softmax step in the reference kernel

// One head over n entries; row_of(a) gives a functor for entry a's element d. Per block, as the
// reference computes it (orders matched on an H100): scores q·k (a cuBLAS product: summed exactly
// here), the block's probabilities summed as a torch row reduction over the whole 64-entry block
// (padding entries contribute zeros at their positions), P·V summed left to right over the
// block's entries, and both folded into the running values as running·rescale + block.
template <typename RowOf>
void attend_head(const float* qh, RowOf row_of, int64_t n_window, int64_t n, int64_t dim, float scale, float sink,
                 float* acc, float* oh) {
  float z[kBlock], p[kBlock], pb[kBlock];
  std::fill(acc, acc + dim, 0.0f);
  float m = -std::numeric_limits<float>::infinity();
  float denom = 0.0f;
  for (int64_t b0 = 0; b0 < n;) {
    // Blocks restart where the compressed entries begin: the reference's index list pads the
    // window part to a whole number of blocks (spec §5.7).
    const bool window = b0 < n_window;
    const int64_t nb = std::min(kBlock, (window ? n_window : n) - b0);
    float bmax = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < nb; ++i) {
      auto k = row_of(b0 + i);
      double s = 0;   // dot_accurate
      for (int64_t d = 0; d < dim; ++d) s += double(qh[d]) * double(k(d));
      z[i] = float(s) * scale;
      bmax = std::max(bmax, z[i]);
    }
    const float m_new = std::max(m, bmax);
    const float rescale = std::exp(m - m_new);   // 0 on the first block (m = -inf)
    const int64_t padded = window ? kBlock : nb;
    for (int64_t i = 0; i < padded; ++i) {
      p[i] = i < nb ? std::exp(z[i] - m_new) : 0.0f;
      pb[i] = round_bf16(p[i]);
    }
    denom = denom * rescale + torch_row_sum<4>(p, padded, [](float v) { return v; });
    for (int64_t d = 0; d < dim; ++d) {
      float s = 0.0f;
      for (int64_t i = 0; i < nb; ++i) s += pb[i] * row_of(b0 + i)(d);
      acc[d] = acc[d] * rescale + s;
    }
    m = m_new;
    b0 += nb;
  }
  denom += std::exp(sink - m);
  for (int64_t d = 0; d < dim; ++d) oh[d] = round_bf16(acc[d] / denom);
}

void generic_attention_rows(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim,
                            float scale, const float* sinks, int64_t h0, int64_t h1, float* out) {
  float acc[1024];
  std::vector<float> big;   // only for head dims above 1024 (V4: 512)
  if (dim > 1024) big.resize(size_t(dim));
  auto row_of = [&](int64_t a) {
    const uint16_t* r = rows[a];
    return [r](int64_t d) { return bf16_to_f32(r[d]); };
  };
  for (int64_t h = h0; h < h1; ++h)
    attend_head(q + h * dim, row_of, n_window, n, dim, scale, sinks[h], big.empty() ? acc : big.data(), out + h * dim);
}

const detail::AttnIsa& active_attn_isa() {
  switch (active_matmul_impl()) {
    case MatmulImpl::avx512: return detail::attn_isa_avx512();
    case MatmulImpl::avx2: return detail::attn_isa_avx2();
    default: return detail::attn_isa_generic();
  }
}

}  // namespace

void attention_with_sink(const float* q, int64_t H, const float* kv, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, float* out) {
  std::vector<float> acc(static_cast<size_t>(dim));
  auto row_of = [&](int64_t a) {
    const float* r = kv + a * dim;
    return [r](int64_t d) { return r[d]; };
  };
  for (int64_t h = 0; h < H; ++h)
    attend_head(q + h * dim, row_of, n_window, n, dim, scale, sinks[h], acc.data(), out + h * dim);
}

void indexer_scores_ref(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys,
                        int64_t j0, int64_t j1, float* scores) {
  for (int64_t j = j0; j < j1; ++j) {
    const uint16_t* key = keys + j * dim;
    float total = 0.0f;
    for (int64_t h = 0; h < heads; ++h) {
      const float* qh = q + h * dim;
      float s = 0.0f;
      for (int64_t i = 0; i < dim; ++i) s += qh[i] * bf16_to_f32(key[i]);
      s = round_bf16(s);                                     // bf16 matmul output
      total += round_bf16(std::max(s, 0.0f) * w[h]);         // relu(s)·w in bf16
    }
    scores[j] = round_bf16(total);
  }
}

void attention_rows_bf16(const float* q, const uint16_t* const* rows, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, int64_t h0, int64_t h1, float* out) {
  const detail::AttnIsa& isa = dim % 16 == 0 && dim <= detail::kMaxAttnDim ? active_attn_isa() : detail::attn_isa_generic();
  isa.attention_rows(q, rows, n_window, n, dim, scale, sinks, h0, h1, out);
}

void indexer_scores(const float* q, const float* w, int64_t heads, int64_t dim, const uint16_t* keys, int64_t j0,
                    int64_t j1, float* scores) {
  const bool fits = heads <= detail::kMaxIndexHeads && (heads + 15) / 16 * 16 * dim <= detail::kMaxIndexQuery;
  const detail::AttnIsa& isa = fits ? active_attn_isa() : detail::attn_isa_generic();
  isa.indexer_scores(q, w, heads, dim, keys, j0, j1, scores);
}

namespace detail {
const AttnIsa& attn_isa_generic() {
  static const AttnIsa isa{generic_attention_rows, indexer_scores_ref};
  return isa;
}
float block_prob_sum(const float* p, int64_t n) { return torch_row_sum<4>(p, n, [](float v) { return v; }); }
}  // namespace detail

}  // namespace dsv4::kernels

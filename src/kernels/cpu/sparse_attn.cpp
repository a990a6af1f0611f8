#include "kernels/cpu/sparse_attn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/reduce.h"

namespace dsv4::kernels {

namespace {
constexpr int64_t kBlock = 64;   // entries per online-softmax step in the reference kernel
}  // namespace

// Per block, as the reference computes it (orders matched on an H100): scores q·k (a cuBLAS
// product: summed exactly here), the block's probabilities summed as a torch row reduction over
// the whole 64-entry block (padding entries contribute zeros at their positions), P·V summed
// left to right over the block's entries, and both folded into the running values as
// running·rescale + block.
void attention_with_sink(const float* q, int64_t H, const float* kv, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, float* out) {
  thread_local std::vector<float> acc;
  acc.resize(static_cast<size_t>(dim));
  float z[kBlock], p[kBlock], pb[kBlock];
  for (int64_t h = 0; h < H; ++h) {
    const float* qh = q + h * dim;
    std::fill(acc.begin(), acc.end(), 0.0f);
    float m = -std::numeric_limits<float>::infinity();
    float denom = 0.0f;
    for (int64_t b0 = 0; b0 < n;) {
      // Blocks restart where the compressed entries begin: the reference's index list pads the
      // window part to a whole number of blocks (spec §5.7).
      const bool window = b0 < n_window;
      const int64_t nb = std::min(kBlock, (window ? n_window : n) - b0);
      float bmax = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < nb; ++i) {
        z[i] = dot_accurate(qh, kv + (b0 + i) * dim, dim) * scale;
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
        for (int64_t i = 0; i < nb; ++i) s += pb[i] * kv[(b0 + i) * dim + d];
        acc[size_t(d)] = acc[size_t(d)] * rescale + s;
      }
      m = m_new;
      b0 += nb;
    }
    denom += std::exp(sinks[h] - m);
    float* oh = out + h * dim;
    for (int64_t d = 0; d < dim; ++d) oh[d] = round_bf16(acc[size_t(d)] / denom);
  }
}

}  // namespace dsv4::kernels

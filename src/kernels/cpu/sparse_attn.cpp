#include "kernels/cpu/sparse_attn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"

namespace dsv4::kernels {

namespace {
constexpr int64_t kBlock = 64;   // entries per online-softmax step in the reference kernel

float dot(const float* a, const float* b, int64_t n) {
  float lanes[16] = {0};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += a[k + l] * b[k + l];
  for (; k < n; ++k) lanes[k & 15] += a[k] * b[k];
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  return lanes[0];
}
}  // namespace

void attention_with_sink(const float* q, int64_t H, const float* kv, int64_t n_window, int64_t n, int64_t dim,
                         float scale, const float* sinks, float* out) {
  std::vector<float> acc(static_cast<size_t>(dim));
  float z[kBlock];
  for (int64_t h = 0; h < H; ++h) {
    const float* qh = q + h * dim;
    std::fill(acc.begin(), acc.end(), 0.0f);
    float m = -std::numeric_limits<float>::infinity();
    float denom = 0.0f;
    for (int64_t b0 = 0; b0 < n;) {
      // Blocks restart where the compressed entries begin: the reference's index list pads the
      // window part to a whole number of blocks (spec §5.7).
      const int64_t end = b0 < n_window ? n_window : n;
      const int64_t nb = std::min(kBlock, end - b0);
      float bmax = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < nb; ++i) {
        z[i] = dot(qh, kv + (b0 + i) * dim, dim) * scale;
        bmax = std::max(bmax, z[i]);
      }
      const float m_new = std::max(m, bmax);
      const float rescale = std::exp(m - m_new);   // 0 on the first block (m = -inf)
      denom *= rescale;
      for (int64_t d = 0; d < dim; ++d) acc[size_t(d)] *= rescale;
      for (int64_t i = 0; i < nb; ++i) {
        const float p = std::exp(z[i] - m_new);
        denom += p;
        const float pb = round_bf16(p);
        const float* v = kv + (b0 + i) * dim;
        for (int64_t d = 0; d < dim; ++d) acc[size_t(d)] += pb * v[d];
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

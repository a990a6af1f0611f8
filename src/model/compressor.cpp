#include "model/compressor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "kernels/cpu/cuda_exp.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"

namespace dsv4::model {

namespace {

constexpr int kKvSimBlock = 64;   // FP8 simulation block of stored KV (spec §5.3)
constexpr int kFp4Block = 32;     // FP4 simulation block of indexer keys (spec §4.4)

// Softmax over `slots` of score, per channel, then the weighted sum of kv (f32, spec §5.5). The
// weighted sum runs in the reference's order for a sum over a middle dimension: slot s goes to
// accumulator s mod 4, the four accumulators are folded left to right (matched bit for bit on
// an H100; a pooled value one ulp off flips bf16 and FP8 roundings of a whole compressed entry).
// The exponentials are the GPU's expf as far as known (kernels/cpu/cuda_exp.h).
void pool(int64_t slots, int64_t d, const float* const* kv_rows, const float* const* score_rows, float* out) {
  for (int64_t ch = 0; ch < d; ++ch) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < slots; ++s) mx = std::max(mx, score_rows[s][ch]);
    float denom = 0.0f;
    for (int64_t s = 0; s < slots; ++s) denom += kernels::cuda_expf(score_rows[s][ch] - mx);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t s = 0; s < slots; ++s) {
      const float weight = kernels::cuda_expf(score_rows[s][ch] - mx) / denom;
      acc[s % 4] += weight * kv_rows[s][ch];
    }
    out[ch] = ((acc[0] + acc[1]) + acc[2]) + acc[3];
  }
}

// bf16(pooled) → RMSNorm → RoPE at the window's first position → FP8 (main) or Hadamard + FP4
// (indexer) simulation; appended as bf16.
void finish_entry(const CompressorWeights& w, CompressorKind kind, const kernels::RopeFreqs& rope, float norm_eps,
                  int64_t window, float* pooled, std::vector<uint16_t>& entries, Arena& a) {
  const int64_t d = w.dim;
  for (int64_t i = 0; i < d; ++i) pooled[i] = round_bf16(pooled[i]);
  kernels::rms_norm(pooled, w.norm.data(), d, norm_eps, pooled);
  float* cs = a.alloc<float>(rope.rope_dim);
  kernels::rope_angles(rope, window * w.ratio, cs);
  kernels::rope_apply(pooled, d, rope.rope_dim, cs, false);
  if (kind == CompressorKind::main) {
    kernels::act_quant_fp8(pooled, d - rope.rope_dim, kKvSimBlock);
  } else {
    kernels::hadamard_rotate(pooled, d);
    kernels::fp4_sim(pooled, d, kFp4Block);
  }
  // Grow by ~1/8 instead of doubling: at long context the compressed entries are most of the
  // sequence state, and doubling would leave up to half of it as slack.
  if (entries.size() + size_t(d) > entries.capacity())
    entries.reserve(entries.size() + std::max(entries.size() / 8, size_t(64 * d)));
  for (int64_t i = 0; i < d; ++i) entries.push_back(f32_to_bf16(pooled[i]));
}

}  // namespace

void compressor_add_ape(const CompressorWeights& w, int64_t n, const int64_t* positions, float* score) {
  for (int64_t t = 0; t < n; ++t) {
    const float* ape = w.ape + (positions[t] % w.ratio) * w.width;
    for (int64_t i = 0; i < w.width; ++i) score[t * w.width + i] += ape[i];
  }
}

bool compressor_pool(const CompressorWeights& w, CompressorState& st, int64_t pos, const float* kvp,
                     const float* score, float* pooled, Arena& a) {
  const int64_t m = w.ratio, d = w.dim, width = w.width;
  const int64_t s = pos % m;
  const int64_t row = w.overlap ? m + s : s;   // CSA: rows 0..m-1 previous window, m..2m-1 current
  std::copy(kvp, kvp + width, st.kv.begin() + row * width);
  std::copy(score, score + width, st.score.begin() + row * width);
  if ((pos + 1) % m != 0) return false;

  ArenaScope scope(a);
  // CSA pools 2m slots: 0..m-1 the previous window's first d channels (series A), m..2m-1 the
  // current window's channels [d, 2d) (series B); a fresh sequence's previous window is
  // (0, -inf) → weight 0. HCA (and V4.1's ratio 2, v4.1 §5.6) pools the m rows of the window.
  const int64_t slots = w.overlap ? 2 * m : m;
  const float** kv_rows = a.alloc<const float*>(slots);
  const float** sc_rows = a.alloc<const float*>(slots);
  for (int64_t r = 0; r < slots; ++r) {
    const int64_t off = r * width + (w.overlap && r >= m ? d : 0);
    kv_rows[r] = st.kv.data() + off;
    sc_rows[r] = st.score.data() + off;
  }
  pool(slots, d, kv_rows, sc_rows, pooled);
  if (w.overlap) {   // the current window becomes the previous one
    std::copy(st.kv.begin() + m * width, st.kv.begin() + 2 * m * width, st.kv.begin());
    std::copy(st.score.begin() + m * width, st.score.begin() + 2 * m * width, st.score.begin());
  }
  return true;
}

bool compressor_push(const CompressorWeights& w, CompressorKind kind, const kernels::RopeFreqs& rope,
                     float norm_eps, CompressorState& st, int64_t pos, const float* kvp, const float* score,
                     std::vector<uint16_t>& entries, Arena& a, float* pooled_out) {
  ArenaScope scope(a);
  float* pooled = a.alloc<float>(w.dim);
  if (!compressor_pool(w, st, pos, kvp, score, pooled, a)) return false;
  if (pooled_out) std::copy(pooled, pooled + w.dim, pooled_out);
  finish_entry(w, kind, rope, norm_eps, pos / w.ratio, pooled, entries, a);
  return true;
}

}  // namespace dsv4::model

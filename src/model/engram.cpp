#include "model/engram.h"

#include <cmath>
#include <cstdio>
#include <memory>

#include "core/dtype.h"
#include "core/parallel.h"
#include "io/engram_primes.h"
#include "kernels/cpu/cuda_rsqrt.h"
#include "kernels/cpu/reduce.h"
#include "model/linear.h"
#include "model/model.h"

namespace dsv4::model {

namespace {

constexpr int64_t kReleaseNgram = 4;   // the multipliers below have one entry per lookback

// v4.1 §5.3.4: sigmoid of the signed square root of the scaled dot product, |dot| clamped at 1e-6.
float engram_gate(float dot) {
  const float root = std::copysign(std::sqrt(std::max(std::fabs(dot), 1e-6f)), dot);
  return 1.0f / (1.0f + std::exp(-root));
}

}  // namespace

bool engram_multipliers(int64_t layer, int64_t out[4]) {
  // v4.1 §5.3.2 (verified there against >= 6 ports): layer 1, then layer 14.
  static constexpr int64_t kLayer1[4] = {76632096046245, 4839876093313, 35959672319349, 73987337458391};
  static constexpr int64_t kLayer14[4] = {67716810739261, 51510806800915, 30921347202721, 82619226485591};
  const int64_t* m = layer == 1 ? kLayer1 : layer == 14 ? kLayer14 : nullptr;
  if (m == nullptr) return false;
  std::copy(m, m + 4, out);
  return true;
}

void EngramHasher::rows(int64_t k, const int32_t* tok, int64_t* out) const {
  const EngramHashLayer& L = layers[size_t(k)];
  // v4.1 §5.3.2: the XOR of int64 products, one more lookback per n-gram size; the products are
  // below 2^63 (multipliers < 2^63 / compressed vocab) and their XOR is non-negative.
  int64_t roll = int64_t(tok[0]) * L.mult[0];
  for (int64_t n = 2; n <= max_ngram; ++n) {
    roll ^= int64_t(tok[n - 1]) * L.mult[size_t(n - 1)];
    for (int64_t h = 0; h < n_heads; ++h) {
      const size_t col = size_t((n - 2) * n_heads + h);
      out[col] = roll % L.prime[col] + L.offset[col];
    }
  }
}

Result<EngramHasher> make_engram_hasher(const io::ModelConfig& c, std::vector<int32_t> cmap) {
  const io::V41EngramConfig& e = c.v41.engram;
  if (e.max_ngram_size != kReleaseNgram)
    return Status::unsupported("Engram: only the released n-gram size 4 has known hash multipliers (v4.1 §5.3.2)");
  if (int64_t(cmap.size()) != c.vocab_size)
    return Status::corrupt_data("Engram token map: " + std::to_string(cmap.size()) + " ids, the vocabulary has " +
                                std::to_string(c.vocab_size));
  // v4.1 §5.3.1: compressed ids are numbered 0, 1, 2, ... in order of first appearance.
  int32_t next = 0;
  for (size_t id = 0; id < cmap.size(); ++id) {
    if (cmap[id] < 0 || cmap[id] > next)
      return Status::corrupt_data("Engram token map: id " + std::to_string(id) + " maps to " + std::to_string(cmap[id]) +
                                  ", not a first-appearance numbering");
    if (cmap[id] == next) ++next;
  }
  if (next != e.compressed_vocab_size)
    return Status::corrupt_data("Engram token map: " + std::to_string(next) + " compressed ids, the config says " +
                                std::to_string(e.compressed_vocab_size));
  EngramHasher h;
  h.cmap = std::move(cmap);
  h.pad = h.cmap[size_t(e.pad_token_id)];
  h.max_ngram = e.max_ngram_size;
  h.n_heads = e.n_heads;
  const std::vector<std::vector<int64_t>> primes = io::engram_primes(e);
  for (size_t k = 0; k < e.layer_ids.size(); ++k) {
    EngramHashLayer L;
    L.mult.resize(kReleaseNgram);
    if (!engram_multipliers(e.layer_ids[k], L.mult.data()))
      return Status::unsupported("Engram at layer " + std::to_string(e.layer_ids[k]) +
                                 ": hash multipliers are known for the released layers 1 and 14 only (v4.1 §5.3.2)");
    L.prime = primes[k];
    int64_t sum = 0;
    for (int64_t p : L.prime) {
      L.offset.push_back(sum);
      sum += p;
    }
    h.layers.push_back(std::move(L));
  }
  return h;
}

Result<EngramHasher> load_engram_hasher(const std::string& dir, const io::ModelConfig& c) {
  const std::string path = dir + "/" + kEngramTokenMapFile;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f)
    return Status::not_found("a DeepSeek-V4.1 checkpoint needs the Engram token map " + path +
                             " (v4.1 §5.3.1: int32 little-endian per vocabulary id, generated from the release's "
                             "tokenizer)");
  std::vector<int32_t> cmap(size_t(c.vocab_size) + 1);
  const size_t got = std::fread(cmap.data(), sizeof(int32_t), cmap.size(), f.get());
  if (got != size_t(c.vocab_size))
    return Status::corrupt_data(path + ": expected " + std::to_string(c.vocab_size) + " int32 values");
  cmap.resize(got);
  return make_engram_hasher(c, std::move(cmap));
}

void engram_lookback(const EngramHasher& h, const int32_t* ids, int64_t i, int64_t P, const int32_t* history,
                     int32_t* tok) {
  bool blocked = false;
  for (int64_t s = 0; s < h.max_ngram; ++s) {
    const int64_t p = P + i - s;
    int32_t src = kEngramDead;
    if (p >= 0) src = s <= i ? ids[i - s] : history[s - i - 1];
    blocked = blocked || p < 0 || src == kEngramDead;
    tok[s] = blocked ? h.pad : src;
  }
}

void engram_push_history(std::vector<int32_t>& history, const int32_t* ids, int64_t n) {
  // history[s] becomes the id of position P+n-1-s: one of the new ids, or the old history[s-n]
  // (s-n < s, not yet overwritten going down).
  for (int64_t s = int64_t(history.size()) - 1; s >= 0; --s) {
    const int64_t i = n - 1 - s;
    history[size_t(s)] = i >= 0 ? ids[i] : history[size_t(-i - 1)];
  }
}

void engram_forward(const Model& m, const BlockWeights& b, const int64_t* hash_rows, int64_t rows, float* X,
                    Scratch& s) {
  const io::ModelConfig& c = m.cfg;
  const EngramWeights& w = b.engram;
  const int64_t n = c.hc_mult, D = c.hidden_size, hd = c.v41.engram.head_dim, cols = m.engram.columns();
  const float eps = float(c.rms_norm_eps);
  Arena& A = s.main;
  ArenaScope scope(A);
  // v4.1 §5.3.3: the rows, dequantised (exact in bf16), concatenated in column order.
  float* e = A.alloc<float>(rows * cols * hd);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t r = hash_rows[t * cols + col];
      const uint8_t* q = w.table + r * hd;
      const uint8_t* sc = w.table_scale + r * (hd / 32);
      float* out = e + (t * cols + col) * hd;
      for (int64_t k = 0; k < hd; ++k) out[k] = round_bf16(e4m3_to_f32(q[k]) * e8m0_to_f32(sc[k / 32]));
    }
  float* kv = A.alloc<float>(rows * (n + 1) * D);
  linear({LinearKind::quantized, w.wkv, e, rows, kv}, A);
  // v4.1 §5.3.4, per stream: everything after the GEMM in f32.
  const float inv_sqrt_d = float(1.0 / std::sqrt(double(D)));
  parallel_for_static(rows > 1, rows, [&](int64_t t, int64_t) {
    const float* value = kv + (t * (n + 1) + n) * D;
    for (int64_t ch = 0; ch < n; ++ch) {
      const float* key = kv + (t * (n + 1) + ch) * D;
      const float* gw = w.gate.data() + ch * D;
      float* h = X + (t * n + ch) * D;
      const float rstd = kernels::cuda_rsqrt(kernels::torch_mean_squares(h, D) + eps) *
                         kernels::cuda_rsqrt(kernels::torch_mean_squares(key, D) + eps);
      float dot = 0.0f;
      for (int64_t d = 0; d < D; ++d) dot += (h[d] * gw[d]) * key[d];
      const float g = engram_gate(dot * rstd * inv_sqrt_d);
      for (int64_t d = 0; d < D; ++d) h[d] = round_bf16(h[d] + g * value[d]);
    }
  });
}

}  // namespace dsv4::model

// Manifold-constrained hyper-connections (spec §5.2): n_hc residual streams mixed around every
// sub-layer. All maps are computed in f32; the outputs that the reference stores are bf16.
#pragma once

#include <cstdint>

#include "model/weights.h"

namespace dsv4::model {

struct HcParams {
  int64_t n_hc = 4, dim = 0;
  int iters = 20;
  float norm_eps = 1e-6f, hc_eps = 1e-6f;
};

// The parameters of a config (its rms_norm_eps: 1e-6 in V4, 1e-20 in V4.1, v4.1 §5.2.1).
HcParams hc_params(const io::ModelConfig& c);

// Sinkhorn-Knopp on an n x n matrix of logits, in place (spec §5.2.1): row softmax + eps,
// column normalisation, then (iters - 1) x (row, column); every division by (sum + eps).
void sinkhorn(float* c, int64_t n, int iters, float eps);

// hc_pre for one token. X: [n_hc, D] streams. Outputs u [D] (bf16-valued), post [n_hc],
// comb [n_hc, n_hc] (row j, column k). u_sum, if set, receives the f32 sums [D] before their bf16
// rounding (a diagnostic: a sum on a bf16 tie is where an ulp of a weight decides, block_probe.h).
void hc_pre(const HcWeights& w, const HcParams& p, const float* X, float* u, float* post, float* comb,
            float* u_sum = nullptr);

// The three maps of one site for one token without the collapse (spec §5.2.1, v4.1 §5.2.1):
// pre [n_hc], post [n_hc], comb [n_hc, n_hc]. hc_pre = hc_mixes, then hc_collapse with its own pre.
void hc_mixes(const HcWeights& w, const HcParams& p, const float* X, float* pre, float* post, float* comb);

// u [D] = bf16(Σ_j pre[j]·X_j), streams summed in order; u_sum as for hc_pre. V4.1 collapses with
// the previous sub-layer's pre (v4.1 §5.2.2).
void hc_collapse(const HcParams& p, const float* X, const float* pre, float* u, float* u_sum = nullptr);

// hc_post for one token (spec §5.2.2): X_new[k] = bf16(post[k]·a + Σ_j comb[j][k]·R[j]). X_new may be R.
void hc_post(const HcParams& p, const float* a, const float* R, const float* post, const float* comb, float* X_new);

// hc_post over rows of streams X [rows, n_hc, D] in place, sub-layer outputs out [rows, D] with
// their post [rows, n_hc] and comb [rows, n_hc, n_hc]; rows spread over the threads.
void hc_post_rows(const HcParams& p, const float* out, const float* post, const float* comb, int64_t rows, float* X);

// hc_head collapse (spec §5.2.4): y [D] = bf16(Σ_j (sigmoid(mix_j·scale + base_j) + eps)·X_j).
void hc_head(const HcWeights& w, const HcParams& p, const float* X, float* y);

}  // namespace dsv4::model

// Lightning indexer of CSA layers (spec §5.6): scores every visible compressed entry for a query
// and selects the top-k entries the attention will read.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/rope.h"
#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// Query side for n rows, after the caller ran the two products (with the layer's other
// products, linear_many): qI [n, Hi·Di] = GEMM_fp8(qr, wq_b) (LinearKind::quantized) and
// weights [n, Hi] = bf16(x·weights_projᵀ) (LinearKind::bf16). This applies RoPE (the layer's
// table) → Hadamard (V4 only: V4.1 has none, v4.1 §4.6) → FP4 simulation to qI and turns weights
// into bf16(weights · Di^-½ · Hi^-½).
void indexer_finish_queries(const Model& m, const kernels::RopeFreqs& rope, bool hadamard, int64_t n,
                            const int64_t* positions, float* qI, float* weights);

// score[j] = I(t, j) for the first n_visible entries of `keys` ([*, Di] bf16), split over the
// threads when `parallel`.
void indexer_score_row(const Model& m, const float* qI, const float* weights, const uint16_t* keys, int64_t n_visible,
                       bool parallel, float* score);

// The indices of the min(k, count) largest of score[0..n) (count: n, or the entries `allowed`
// marks nonzero, when given), highest first, ties to the lower index; returns how many.
// Temporaries come from `a`.
int64_t topk_entries(const float* score, int64_t n, int64_t k, const uint8_t* allowed, int32_t* selected, Arena& a);

// I(t, j) for the first n_visible entries of `keys` ([*, Di] bf16), then the indices of the
// min(k, n_visible) largest scores, highest first; ties go to the lower index (spec §6.3 item 4).
// Writes them to `selected` (room for min(k, n_visible)) and returns how many. The scores split
// over the OpenMP threads when `parallel` (a single query at decode); otherwise this runs on the
// calling thread. Temporaries come from `a`.
int64_t indexer_select(const Model& m, const float* qI, const float* weights, const uint16_t* keys, int64_t n_visible,
                       bool parallel, int32_t* selected, Arena& a);

}  // namespace dsv4::model

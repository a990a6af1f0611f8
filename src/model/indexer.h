// Lightning indexer of CSA layers (spec §5.6): scores every visible compressed entry for a query
// and selects the top-k entries the attention will read.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace dsv4::model {

// Query side for n rows: qI [n, Hi·Di] (GEMM → RoPE → Hadamard → FP4 simulation) and head
// weights w [n, Hi] = bf16(bf16(x·weights_projᵀ) · Di^-½ · Hi^-½).
void indexer_queries(const Model& m, const IndexerWeights& iw, const float* x, const float* qr, int64_t n,
                     const int64_t* positions, float* qI, float* weights);

// I(t, j) for the first n_visible entries of `keys` ([*, Di] bf16), then the indices of the
// min(k, n_visible) largest scores, highest first; ties go to the lower index (spec §6.3 item 4).
void indexer_select(const Model& m, const float* qI, const float* weights, const std::vector<uint16_t>& keys,
                    int64_t n_visible, std::vector<int64_t>& selected);

}  // namespace dsv4::model

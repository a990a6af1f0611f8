// Mixture of experts (spec §5.10): sqrtsoftplus router (hash-routed on the first layers,
// bias-corrected top-k elsewhere), SwiGLU experts with the swiglu_limit clamps, one shared expert.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace dsv4::model {

// Expert choice of one token: ids (ascending) and their scaled weights.
struct Routing {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

// spec §5.10 router for one token. x: [D] ffn-normed input.
void route_token(const Model& m, const MoeWeights& w, bool hash_routed, const float* x, int32_t token, Routing& out);

// x: [rows, D] ffn-normed; tokens: [rows]; out: [rows, D] (bf16-valued).
void moe_forward(const Model& m, const BlockWeights& b, const float* x, const int32_t* tokens, int64_t rows, float* out);

}  // namespace dsv4::model

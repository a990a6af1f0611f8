// Mixture of experts (spec §5.10): sqrtsoftplus router (hash-routed on the first layers,
// bias-corrected top-k elsewhere), SwiGLU experts with the swiglu_limit clamps, one shared expert.
#pragma once

#include <cstdint>

#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// spec §5.10 router for one token, from its router logits [E] (x·gateᵀ, f32): writes the K
// selected expert ids in ascending order and their scaled weights. Temporaries come from `a`.
void route_token(const Model& m, const MoeWeights& w, bool hash_routed, const float* logits, int32_t token,
                 int32_t* ids, float* weights, Arena& a);

// x: [rows, D] ffn-normed; tokens: [rows]; out: [rows, D] (bf16-valued).
void moe_forward(const Model& m, const BlockWeights& b, const float* x, const int32_t* tokens, int64_t rows, float* out,
                 Scratch& s);

}  // namespace dsv4::model

// KV compressor (spec §5.5): pools m source tokens (CSA: 2m with the overlapping previous
// window) into one compressed entry per window, with a per-channel softmax over gate + ape.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/rope.h"
#include "model/scratch.h"
#include "model/state.h"
#include "model/weights.h"

namespace dsv4::model {

enum class CompressorKind { main, indexer };

// Feeds one source token at position `pos` through the decode state machine (spec §5.5).
// kvp and score ([c·d], f32; score already includes ape[pos mod m]) are the token's projections.
// If the token closes window j = pos / m, the finished entry (spec §5.5 "Then, for both kinds")
// is appended to `entries` as bf16, and `pooled`, if set, receives the f32 pooled vector [d]
// before its bf16 rounding (a diagnostic, block_probe.h). Returns whether an entry was appended.
// Temporaries come from `a`.
bool compressor_push(const CompressorWeights& w, CompressorKind kind, const kernels::RopeFreqs& rope,
                     float norm_eps, CompressorState& st, int64_t pos, const float* kvp, const float* score,
                     std::vector<uint16_t>& entries, Arena& a, float* pooled = nullptr);

// The state machine and pooling of compressor_push without the entry's finish (shared with V4.1's
// ratio-2 compressor, v4.1 §5.6, which finishes its latent differently): writes the token's slot
// and, if it closes window pos / m, the f32 pooled vector [d] to `pooled`. Returns whether it did.
bool compressor_pool(const CompressorWeights& w, CompressorState& st, int64_t pos, const float* kvp,
                     const float* score, float* pooled, Arena& a);

// The projections of n source rows x [n, D] are kvp = x·wkvᵀ and score = x·wgateᵀ + ape[pos mod m]
// (LinearKind::f32); the caller runs the two products (with the layer's other products of x,
// linear_many) and this adds ape to score [n, c·d].
void compressor_add_ape(const CompressorWeights& w, int64_t n, const int64_t* positions, float* score);

}  // namespace dsv4::model

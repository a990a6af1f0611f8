// The grouped output projection of the attention (spec §5.8): heads in G contiguous groups, each
// group through its own slice of wo_a (a bf16 linear), then wo_b over the concatenation.
#pragma once

#include <cstdint>

#include "model/model.h"
#include "model/scratch.h"

namespace dsv4::model {

// out [rows, D] = wo_b(concat_g bf16(o_g · wo_a[g]ᵀ)) for o [rows, H·Dh]. Temporaries come from a.
void grouped_output_projection(const Model& m, const AttentionWeights& w, const float* o, int64_t rows, float* out,
                               Arena& a);

}  // namespace dsv4::model

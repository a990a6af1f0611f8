// The Engram table layout (v4.1 §5.3.2): one prime modulus per hash column, which also fixes each
// table's row count. Config validation checks engram_num_embeddings against it; the lookup will
// reduce hashes by these primes and offset them by their running sums.
#pragma once

#include <cstdint>
#include <vector>

#include "io/config_v41.h"

namespace dsv4::io {

// primes[k][col] for Engram layer k (order of e.layer_ids) and column col = (n - 2)·n_heads + h
// (n-gram size n, head h). The rule [REF41-ENG `EngramLayout.from_args`]: for every (layer,
// n-gram size) a running value restarts at vocab_size - 1, and each head takes the smallest prime
// above it that no earlier column used. A table has Σ_col primes[k][col] rows.
// REQUIRES: e.vocab_size >= 1 and columns() >= 1 (checked by the config parser).
std::vector<std::vector<int64_t>> engram_primes(const V41EngramConfig& e);

}  // namespace dsv4::io

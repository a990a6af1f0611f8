// The complete tensor inventory a V4 checkpoint must hold for a given config (spec §3.3–§3.5):
// name, dtype and shape of every tensor. The loader validates against it and `dsv4 synth`
// writes exactly it, so both always agree with the spec.
#pragma once

#include <vector>

#include "io/config.h"
#include "io/safetensors.h"

namespace dsv4::io {

// Prefix of block `layer` ("layers.7." or "mtp.0." for layer == num_hidden_layers).
std::string block_prefix(const ModelConfig& c, int64_t layer);

// Every tensor, globals first, then layers in order, then the MTP block.
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

}  // namespace dsv4::io

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

// Every tensor, globals first, then layers in order, then the MTP block, with the element type
// and shape it holds (FP4 routed experts: fp4_e2m1 [rows, cols]).
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

// The dtype and shape a tensor has in a safetensors header. This is the one place where the
// official checkpoints' labelling of FP4 is spelled out: headers have no FP4 dtype, so fp4_e2m1
// [rows, cols] is stored as I8 [rows, cols/2] (spec §3.3). Every other tensor is its own form.
// Checkpoint::open reads headers through it and `dsv4 synth` writes them with it.
TensorSpec stored_form(const TensorSpec& t);

}  // namespace dsv4::io

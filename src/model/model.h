// A loaded model: the validated checkpoint mapping, the bound weight views and the RoPE tables.
#pragma once

#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "kernels/cpu/rope.h"
#include "model/engram.h"
#include "model/expert_split.h"
#include "model/weights.h"

namespace dsv4::model {

struct Model {
  std::unique_ptr<io::Checkpoint> checkpoint;
  io::ModelConfig cfg;
  ModelWeights w;
  // spec §4.6: SWA layers (the MTP block of both releases among them) use rope_theta without
  // YaRN; CSA and HCA layers use compress_rope_theta with YaRN for every rotary use.
  kernels::RopeFreqs rope_plain, rope_yarn;
  const kernels::RopeFreqs& rope_for(io::LayerKind kind) const {
    return kind == io::LayerKind::swa ? rope_plain : rope_yarn;
  }
  // The table of block b in either architecture: V4 by its kind; V4.1 by its ratio (v4.1 §4.5:
  // m = 0 layers rope_theta without YaRN, m > 0 compress_rope_theta with YaRN, indexer included).
  const kernels::RopeFreqs& rope_for(const BlockWeights& b) const {
    if (cfg.architecture == io::Architecture::v41) return b.v41.ratio == 0 ? rope_plain : rope_yarn;
    return rope_for(b.kind);
  }
  EngramHasher engram;   // V4.1: the Engram hashing constants and token map (v4.1 §5.3)
  // Set when the routed experts are divided among processes (model/expert_split.h): moe_forward
  // then computes only this process's experts and exchanges their rows. Null: all of them here.
  std::unique_ptr<ExpertSplit> expert_split;
};

// With `wanted` (io::Checkpoint::open), only the shards holding the tensors it accepts are mapped:
// it must accept every tensor but some routed experts (another process's share), whose views are
// then left empty (bind_weights). With a `node_copy` (node >= 0), the tensors it names are read
// into memory of that NUMA node before the views are bound (io::Checkpoint::copy_to_node).
Result<std::unique_ptr<Model>> load_model(const std::string& dir, const io::TensorFilter& wanted = {},
                                          const io::NodeCopy& node_copy = {});

// Faults the weights the forward reads into memory (io::Checkpoint::populate): V4 every shard
// (re-reading small pages if asked); V4.1 only its bound text and DSpark tensors, never the Engram
// tables, which are read a few rows per token (v4.1 §5.3.3), nor the vision tower, which nothing
// runs yet. With a node copy, only the tensors left in the mapping (the copy is read already),
// without re-reading. Returns the bytes re-read (V4) or populated (V4.1, a copy).
Result<uint64_t> populate_weights(const Model& m, bool reread_small_pages);

}  // namespace dsv4::model

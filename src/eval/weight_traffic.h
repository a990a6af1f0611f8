// Weight bytes one decoded token reads from the checkpoint mapping, counted from the tensor
// sizes of the checkpoint itself (TensorEntry::nbytes), never from a formula: the bound that
// `dsv4 bench` compares decode speed with (tok/s x bytes/token <= memory bandwidth).
#pragma once

#include <cstdint>

#include "io/checkpoint.h"

namespace dsv4::eval {

// What a single-token step of the main stack touches (plain decode; the MTP block does not run):
//   attention  every layers.i.attn.* tensor (projections incl. wo_a/wo_b, q/kv norms, attn_sink,
//              compressor and indexer): each runs once per token (spec §5.3-§5.8)
//   experts    num_experts_per_tok routed experts per layer, w1+w2+w3 with their scales (§5.10);
//              all experts of a layer have the same size, so this is the layer's routed total x K/E
//   shared     ffn.shared_experts.* (w1, w2, w3 and scales)
//   head       head.weight in full (every logit is computed), norm.weight, hc_head_*
//   engram     V4.1 (v4.1 §5.3): per Engram layer one table row (FP8 + scales) per hash column,
//              and the Engram projections in full; the tables themselves are never read whole
//   other      one embed.weight row; per layer the hc_attn/hc_ffn maps, attn_norm/ffn_norm, the
//              router gate.weight (hash layers score with it too, §5.10) and gate.bias or one
//              tid2eid row (the hash table is indexed by the token id)
// Excluded: mtp.* (the drafter), V4.1's vision.* tower, and the rest of embed.weight / tid2eid /
// the unselected experts.
struct WeightTraffic {
  uint64_t attention = 0, experts = 0, shared = 0, head = 0, other = 0;
  uint64_t engram = 0;   // V4.1: the Engram rows looked up and the Engram projections
  uint64_t total() const { return attention + experts + shared + head + engram + other; }
};

// REQUIRES: ck passed inventory validation (Checkpoint::open), so every expected tensor exists
// (in an opened shard, or, for another rank's experts, in the index).
WeightTraffic weight_bytes_per_token(const io::Checkpoint& ck);

}  // namespace dsv4::eval

// Views of every weight of a V4 checkpoint, bound once at load from the typed inventory
// (io/inventory.h, spec §3). Field names are the checkpoint's own (wq_a, wkv, attn_sink, ape,
// tid2eid). Nothing here owns weight memory: matrices point into the mapping; only small vectors
// (norm weights, HC maps) are upcast to f32.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "kernels/cpu/matmul.h"

namespace dsv4::model {

using kernels::WeightView;

// Mixing maps of one hyper-connection site (spec §5.2): fn [mix, n_hc·D], base [mix], scale.
struct HcWeights {
  const float* fn = nullptr;
  const float* base = nullptr;
  const float* scale = nullptr;
  int64_t mix = 0;
};

struct CompressorWeights {
  WeightView wkv, wgate;          // bf16 [c·d, D]
  const float* ape = nullptr;     // [m, c·d]
  std::vector<float> norm;        // [d]
  int64_t ratio = 0, dim = 0, width = 0;   // m, d, c·d
  bool overlap = false;           // CSA (c = 2): an entry also pools the previous window (spec §5.5)
};

struct IndexerWeights {
  WeightView wq_b;                // fp8 [Hi·Di, Rq]
  WeightView weights_proj;        // bf16 [Hi, D]
  CompressorWeights compressor;   // d = Di, m = 4
};

struct AttentionWeights {
  WeightView wq_a, wq_b, wkv, wo_a, wo_b;
  std::vector<float> q_norm, kv_norm;
  const float* attn_sink = nullptr;   // [H]
  CompressorWeights compressor;       // CSA and HCA
  IndexerWeights indexer;             // CSA
};

struct ExpertWeights {
  WeightView w1, w2, w3;   // gate, down, up
};

struct MoeWeights {
  const uint16_t* gate = nullptr;    // bf16 [E, D]
  WeightView gate_view;              // the same as a matmul view
  const int64_t* tid2eid = nullptr;  // [V, K] (hash layers)
  const float* bias = nullptr;       // [E] (other layers)
  ExpertWeights shared;
  std::vector<ExpertWeights> experts;
};

struct BlockWeights {
  int64_t layer = 0;
  io::LayerKind kind = io::LayerKind::swa;   // what its attention attends (spec §5.9)
  bool hash_routed = false;
  HcWeights hc_attn, hc_ffn;
  std::vector<float> attn_norm, ffn_norm;
  AttentionWeights attn;
  MoeWeights ffn;
};

struct HeadWeights {
  HcWeights hc;                      // hc_head_{fn,base,scale}: mix = n_hc
  std::vector<float> norm;
};

struct MtpWeights {
  WeightView e_proj, h_proj;
  std::vector<float> enorm, hnorm;
  BlockWeights block;
  HeadWeights head;
};

// The DSpark drafter (addendum §A3.3), read by the draft forward (model/dspark.h); the target
// forward does not read it. embed and head are the target's (addendum §A3.4).
struct DsparkWeights {
  WeightView main_proj;              // fp8 [D, |T|·D] (stage 0)
  std::vector<float> main_norm;      // [D], f32 like every RMSNorm weight (addendum §A3.6)
  std::vector<BlockWeights> stages;  // NS SWA blocks, layers L .. L+NS-1
  HeadWeights head;                  // last stage's hc_head + norm
  WeightView markov_w1, markov_w2;   // bf16 [V, r]: Markov embedding / output head
  std::vector<float> confidence_proj;   // [D + r], upcast to f32 as the reference does (§A3.6)
};

struct ModelWeights {
  const uint16_t* embed = nullptr;   // bf16 [V, D]
  WeightView head;                   // bf16 [V, D]
  HeadWeights final_head;            // hc_head + norm
  std::vector<BlockWeights> blocks;  // L
  bool has_mtp = false;
  MtpWeights mtp;
  bool has_dspark = false;
  DsparkWeights dspark;
};

// Binds every view. REQUIRES: the checkpoint passed inventory validation (Checkpoint::open). A
// routed expert whose tensors are in shards the checkpoint did not open (another process's share,
// model/expert_split.h) gets empty views (data null).
ModelWeights bind_weights(const io::Checkpoint& ck);

}  // namespace dsv4::model

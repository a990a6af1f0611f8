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
  CompressorWeights compressor;   // V4: d = Di, m = 4
  WeightView wk;                  // V4.1 index-key owners: bf16 [Di, Dh], latent -> key (v4.1 §5.8.1)
  std::vector<float> k_norm;      // V4.1 index-key owners: [Di]
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
  // E routed experts, K of them per token: the main stack's from the config; V4.1's DSpark stages
  // have their own (v4.1 §7.3: 128, top-3).
  int64_t n_experts = 0, top_k = 0;
  const uint16_t* gate = nullptr;    // bf16 [E, D]
  WeightView gate_view;              // the same as a matmul view
  const int64_t* tid2eid = nullptr;  // [V, K] (hash layers)
  const float* bias = nullptr;       // [E] (other layers)
  // Added to the sum of the selected scores before the weights are normalised: 0 in V4 (exact),
  // 1e-20 in V4.1 (v4.1 §5.12).
  float route_norm_eps = 0.0f;
  ExpertWeights shared;
  std::vector<ExpertWeights> experts;
};

// A V4.1 Engram layer (v4.1 §5.3): the FP8 table, read a few rows per token (never populated
// up front), the key/value projection and the gate weights.
struct EngramWeights {
  const uint8_t* table = nullptr;        // E4M3 [rows, head_dim]
  const uint8_t* table_scale = nullptr;  // E8M0 [rows, head_dim/32] (v4.1 §3.2)
  int64_t rows = 0;
  WeightView wkv;                    // fp8 [(n_hc+1)·D, columns·head_dim]
  std::vector<float> gate;           // [n_hc, D] = f32(q_weight) ⊙ f32(k_weight) (v4.1 §5.3.4)
  int64_t index = -1;                // k: the Engram layer's index in engram_layer_ids
};

struct BlockWeights {
  int64_t layer = 0;
  io::LayerKind kind = io::LayerKind::swa;   // V4: what its attention attends (spec §5.9)
  io::V41Layer v41;                          // V4.1: the layer's role (v4.1 §2.3); kind unused
  bool hash_routed = false;
  bool has_engram = false;                   // V4.1 Engram layers
  EngramWeights engram;
  HcWeights hc_attn, hc_ffn;
  std::vector<float> attn_norm, ffn_norm;
  AttentionWeights attn;
  MoeWeights ffn;
};

struct HeadWeights {
  HcWeights hc;                      // hc_head_{fn,base,scale}: mix = n_hc (V4)
  std::vector<float> norm;
  // V4.1 has no hc_head: the streams collapse with the last FFN sub-layer's pre mix, carried after
  // them in each row (v4.1 §5.1, §5.13; model/forward.h stream_width).
  bool lagged_pre = false;
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

// Binds every view of the checkpoint's architecture (V4.1: weights_v41.cpp). REQUIRES: the checkpoint passed inventory validation (Checkpoint::open). A
// routed expert whose tensors are in shards the checkpoint did not open (another process's share,
// model/expert_split.h) gets empty views (data null).
ModelWeights bind_weights(const io::Checkpoint& ck);

}  // namespace dsv4::model

// The tensor inventory of a DeepSeek-V4.1 checkpoint (v4.1 §3.3–§3.5): the V4.1 counterpart of
// io::Inventory, built from the same matrix, hyper-connection and expert descriptions. What a
// layer holds follows its role in the derived schedule (ModelConfig::v41.layers), never its index.
// Checkpoint::open validates the files against it and `dsv4 synth` writes it (expected_tensors).
#pragma once

#include <optional>
#include <vector>

#include "io/inventory.h"

namespace dsv4::io {

struct V41CompressorSpec {         // KV sources (v4.1 §3.4, §5.6)
  MatrixSpec wkv;                  // bf16 [Dh, D]
  std::optional<MatrixSpec> wgate; // bf16 [Dh, D], ratio 2 only (none at layer 20)
  TensorSpec norm;                 // bf16 [Dh]
};

struct V41IndexKeySpec {           // index-key owners = KV sources (v4.1 §5.8.1)
  MatrixSpec wk;                   // bf16 [Di, Dh]: latent -> index key
  TensorSpec k_norm;               // bf16 [Di]
};

struct V41IndexerSpec {            // index sources (v4.1 §5.8)
  MatrixSpec wq_b;                 // fp8 [Hi·Di, Rq]
  MatrixSpec weights_proj;         // bf16 [Hi, D]
  std::optional<V41IndexKeySpec> keys;
};

struct V41AttentionSpec {          // v4.1 §3.4, §5.4
  MatrixSpec wq_a, wq_b, wkv, wo_a, wo_b;
  TensorSpec q_norm, kv_norm, attn_sink;
  std::optional<V41CompressorSpec> compressor;
  std::optional<V41IndexerSpec> indexer;
};

struct V41MoeSpec {                // v4.1 §5.12; DSpark stages with their own expert count (§7.3)
  MatrixSpec gate;                 // bf16 [E, D]
  TensorSpec bias, bias_vl;        // f32 [E]: text tokens / image-span tokens
  ExpertSpec shared;               // fp8
  std::vector<ExpertSpec> experts; // fp4
};

struct EngramSpec {                // layers in engram_layer_ids (v4.1 §3.4, §5.3)
  MatrixSpec embed;                // fp8 [rows, head_dim] + E8M0 [rows, head_dim/32]
  MatrixSpec wkv;                  // fp8 [(hc_mult+1)·D, columns·head_dim]
  TensorSpec q_weight, k_weight;   // bf16 [hc_mult, D]
};

struct V41BlockSpec {
  int64_t layer = 0;               // num_hidden_layers + s for "mtp.{s}."
  std::optional<EngramSpec> engram;
  HcSpec hc_attn, hc_ffn;
  TensorSpec attn_norm, ffn_norm;
  V41AttentionSpec attn;
  V41MoeSpec ffn;
};

struct V41DsparkSpec {             // v4.1 §3.5, "mtp.0." .. "mtp.{NS-1}."
  MatrixSpec main_proj;            // stage 0: fp8 [D, |T|·D]
  TensorSpec main_norm;            // stage 0: bf16 [D]
  std::vector<V41BlockSpec> stages;
  TensorSpec norm;                 // last stage: bf16 [D] (no hc_head in V4.1)
  MatrixSpec markov_embed, markov_head;   // last stage: bf16 [V, r] ("markov_head.embed" / ".head")
  MatrixSpec confidence_proj;      // last stage: bf16 [1, D + r]
};

struct VisionBlockSpec {           // "vision.blocks.{i}." (v4.1 §12)
  TensorSpec norm1, norm2;         // bf16 [Dv]
  MatrixSpec wqkv, wo;             // bf16 [3·Dv, Dv], [Dv, Dv]
  TensorSpec wqkv_bias, wo_bias;   // bf16 [3·Dv], [Dv]
  MatrixSpec w1, w2;               // bf16 [2·Iv, Dv] (gate | up), [Dv, Iv]
};

// The vision tower, the aligner and the image-span delimiters (v4.1 §3.3, §12): loaded and
// validated; nothing runs them yet.
struct VisionSpec {
  MatrixSpec patch_embed;          // bf16 [Dv, 3·patch²] ("vision.patch_embed.proj")
  TensorSpec patch_embed_bias;     // bf16 [Dv]
  std::vector<VisionBlockSpec> blocks;
  TensorSpec norm;                 // bf16 [Dv]
  MatrixSpec aligner_w1, aligner_w2;            // bf16 [D, Dv·r²], [D, D]
  TensorSpec aligner_w1_bias, aligner_w2_bias;  // bf16 [D]
  TensorSpec image_start, image_end, image_newline;   // bf16 [D]
};

struct V41Inventory {
  TensorSpec embed;                // bf16 [V, D]
  MatrixSpec head;                 // bf16 [V, D]
  TensorSpec norm;                 // bf16 [D]
  std::vector<V41BlockSpec> blocks;
  VisionSpec vision;
  V41DsparkSpec dspark;
};

// REQUIRES: c.architecture == v41. Every tensor is also appended to `flat` (when given) in file
// order: the globals, the backbone layers in order, the vision part, then the DSpark stages (last,
// so that synth gives them shards of their own, as for 0731).
V41Inventory v41_inventory(const ModelConfig& c, std::vector<TensorSpec>* flat = nullptr);

}  // namespace dsv4::io

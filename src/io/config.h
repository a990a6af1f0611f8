// The model configuration, read from the checkpoint's root config.json (spec §2.1; v4.1 §2.1 for
// V4.1's nested one). Every dimension comes from the file; nothing is hard-coded to Flash or Pro.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/config_v41.h"

namespace dsv4::io {

// Attention kind of a layer, from its compress_ratios entry m (spec §2.3, §5.9): swa (m = 0) attends
// its raw window only; csa (m = 4) adds the overlapping compressor and the indexer's top-k; hca
// (m = 128) adds every visible entry of a non-overlapping compressor. Code branches on the kind;
// the number m only enters arithmetic (entry counts floor((t+1)/m), ape rows).
enum class LayerKind { swa, csa, hca };

// Which model a config describes, hence which forward runs it: V4 (flat config, model_type
// "deepseek_v4": the preview and the 0731/0813 releases) or V4.1 (nested text_config and
// vision_config, model_type "deepseek_v41", v4.1 §2.1). The two share the keys ModelConfig holds;
// what only V4.1 has is in ModelConfig::v41.
enum class Architecture { v4, v41 };

// Which V4 release family a config belongs to. Rule (addendum §A6.5): any `dspark_*` key in the root
// config makes it a DSpark checkpoint (Flash-0731, Pro-0813, and the Flash-DSpark intermediate);
// otherwise it is the preview. A V4.1 config has dspark_* keys too (v4.1 §2.1) and is `dspark`
// by the same rule: its drafter is DSpark. text/encoder_revision looks at the architecture
// first, so a V4.1 checkpoint gets V4.1's chat encoder, not 0731's.
enum class Revision { preview, dspark };

// The draft model a checkpoint carries: the preview's one MTP block (spec §3.5, "mtp.0." with
// e_proj/h_proj), the DSpark stages "mtp.0." .. "mtp.{NS-1}." (addendum §A3.3), or nothing.
enum class DrafterKind { none, mtp, dspark };

// The `dspark_*` keys of addendum §A2.1 (all four required once one is present).
struct DsparkConfig {
  int64_t block_size = 0;                 // γ: draft tokens per round
  int64_t noise_token_id = 0;             // filler id of draft slots 1..γ-1 (addendum §A6.4)
  std::vector<int64_t> target_layer_ids;  // T: tapped main layers, strictly increasing (see config.cpp)
  int64_t markov_rank = 0;                // r
};

// The keys V4 and V4.1 share, by their config names (V4.1: those of text_config, and the root's
// token ids), plus V4.1's own part. V4 code reads only the shared part and never sees a V4.1
// config (model::load_model refuses it), so adding V4.1 changed nothing it reads.
struct ModelConfig {
  Architecture architecture = Architecture::v4;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;            // D
  int64_t num_hidden_layers = 0;      // L (main stack, MTP excluded)
  int64_t num_attention_heads = 0;    // H
  int64_t head_dim = 0;               // Dh
  int64_t qk_rope_head_dim = 0;       // Dr
  int64_t q_lora_rank = 0;            // Rq
  int64_t o_groups = 0;               // G
  int64_t o_lora_rank = 0;            // Ro
  int64_t sliding_window = 0;         // W
  std::vector<int> compress_ratios;   // L + drafter_blocks() entries: V4 0, 4 or 128; V4.1 0, 1 or 2
  double compress_rope_theta = 0;
  double rope_theta = 0;
  double rope_factor = 1;             // rope_scaling.factor (YaRN)
  int64_t rope_original_max_pos = 0;  // rope_scaling.original_max_position_embeddings
  double beta_fast = 32, beta_slow = 1;
  int64_t max_position_embeddings = 0;
  int64_t index_n_heads = 0, index_head_dim = 0, index_topk = 0;
  int64_t hc_mult = 0;
  int64_t hc_sinkhorn_iters = 0;
  double hc_eps = 1e-6;
  double rms_norm_eps = 1e-6;
  int64_t n_routed_experts = 0, num_experts_per_tok = 0, n_shared_experts = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hash_layers = 0;       // V4.1: none (v4.1 §1)
  double routed_scaling_factor = 1;
  double swiglu_limit = 0;            // 0 = no clamp
  // As the file says. Only the preview's MTP block follows it: DSpark configs keep it at 1 while
  // they carry 3 stages (addendum §A2.1), so nothing reads it for them.
  int64_t num_nextn_predict_layers = 0;
  Revision revision = Revision::preview;
  DsparkConfig dspark;                // revision == dspark only
  bool experts_fp4 = true;            // expert_dtype "fp4" (default of the official release)
  int64_t bos_token_id = 0, eos_token_id = 1;
  V41Config v41;                      // architecture == v41 only

  int64_t nope_head_dim() const { return head_dim - qk_rope_head_dim; }
  DrafterKind drafter() const;
  // Blocks after the main stack, at layer indices L.. (kinds from compress_ratios too): the
  // preview's MTP block (num_nextn_predict_layers, 0 or 1), or the DSpark stages, whose count NS is
  // len(compress_ratios) - num_hidden_layers (addendum §A2.1), never num_nextn_predict_layers.
  int64_t drafter_blocks() const;
  // Blocks with per-sequence target state: the main stack plus the preview's MTP block. DSpark
  // stages keep no such state (their context ring holds target-derived rows, addendum §A4.4).
  int64_t state_blocks() const { return num_hidden_layers + (drafter() == DrafterKind::mtp ? 1 : 0); }
  // V4 only (V4.1's ratios 1 and 2 are no V4 kind; its roles are v41.layers).
  LayerKind layer_kind(int64_t layer) const;
  int ratio(int64_t layer) const { return compress_ratios[size_t(layer)]; }
};

// "preview", "0731", "0813" (see config.cpp for the rule) or "V4.1-Flash", and "MTP-1", "DSpark
// with N stages" or "none", for `dsv4 inspect` and logs.
std::string release_name(const ModelConfig& c);
std::string drafter_name(const ModelConfig& c);
// "DeepSeek-V4" or "DeepSeek-V4.1", for messages.
std::string architecture_name(const ModelConfig& c);

// Parses config.json text; `name` is used in messages.
Result<ModelConfig> parse_config(const std::string& text, const std::string& name);
Result<ModelConfig> load_config(const std::string& path);

}  // namespace dsv4::io

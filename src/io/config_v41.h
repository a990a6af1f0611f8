// What only DeepSeek-V4.1 configs have (v4.1 §2): the keys of its nested text_config and
// vision_config that V4 lacks, and the layer schedule derived from them (v4.1 §2.3, Appendix A).
// Held by io::ModelConfig::v41; the keys both architectures share stay in ModelConfig itself.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace dsv4::io {

// v4.1 §2.1 `engram_*`, §5.3: n-gram hash tables added into the streams before some layers.
struct V41EngramConfig {
  std::vector<int64_t> layer_ids;        // strictly increasing main layers
  std::vector<int64_t> num_embeddings;   // table rows per entry of layer_ids (= the prime rule's sum)
  int64_t max_ngram_size = 0;            // n-grams of 2..max_ngram_size tokens
  int64_t n_heads = 0;                   // hash heads per n-gram size
  int64_t head_dim = 0;                  // width of a table row
  int64_t vocab_size = 0;                // where the prime search starts (+1)
  int64_t compressed_vocab_size = 0;     // size of the compressed token map (v4.1 §5.3.1)
  int64_t pad_token_id = 0;              // raw id that fills missing lookbacks
  // Rows looked up per token and layer: (max_ngram_size - 1) · n_heads (24 in the release).
  int64_t columns() const { return (max_ngram_size - 1) * n_heads; }
};

// v4.1 §2.1 `vision_config` (§12). The tower is loaded and validated, never run.
struct V41VisionConfig {
  int64_t num_hidden_layers = 0, hidden_size = 0, num_attention_heads = 0, intermediate_size = 0;
  int64_t patch_size = 0, downsample_ratio = 0, max_image_tokens = 0, min_pixels = 0;
  double rope_theta = 0;
  std::optional<double> max_wh_ratio;    // null in the release
};

// One row of Appendix A: the role of layer l (backbone 0..L-1, then the DSpark stages) as the
// rules of v4.1 §2.3 derive it. -1 marks "none".
struct V41Layer {
  int ratio = 0;                  // m: 0 window only, 1 or 2 window + compressed KV
  bool dspark_stage = false;      // layer >= num_hidden_layers ("mtp.{s}.")
  bool decoder = false;           // the decoder half of the causal encoder/decoder split (v4.1 §6)
  bool tapped = false;            // its input feeds the DSpark drafter (v4.1 §7.2)
  int64_t kv_group = -1;          // the KV source whose compressed latent it reads (m > 0)
  bool kv_source = false;         // owns the group's compressor and index keys
  int64_t index_group = -1;       // the index source whose top-k list it uses (m > 0)
  bool index_source = false;      // runs an indexer (its query side)
  bool candidate_source = false;  // level-1 candidate blocks (v4.1 §5.8.3)
  bool candidate_consumer = false;
  int64_t engram = -1;            // index into V41EngramConfig::layer_ids
  int64_t n_experts = 0, experts_per_tok = 0;   // its MoE (DSpark stages have their own, v4.1 §7.3)
};

struct V41Config {
  std::vector<int64_t> kv_source_layer_ids;      // strictly increasing, m > 0
  std::vector<int64_t> index_source_layer_ids;   // strictly increasing, m > 0, every KV source among them
  int64_t candidate_source_layer_id = -1;        // an index source, or -1: no candidate filter
  int64_t candidate_topk_blocks = 0, candidate_block_size = 0;
  V41EngramConfig engram;
  int64_t dspark_n_routed_experts = 0, dspark_num_experts_per_tok = 0;
  int64_t fp8_block = 0;                         // quantization_config.weight_block_size: 32x32
  int64_t pad_token_id = 0, image_token_id = 0;
  V41VisionConfig vision;
  // Derived (v4.1 §2.3): one entry per compress_ratios entry.
  std::vector<V41Layer> layers;
  int64_t decoder_start = 0;                     // first decoder layer (v4.1 §6)
};

}  // namespace dsv4::io

#include "eval/synth_config_v41.h"

#include <algorithm>
#include <vector>

#include "io/engram_primes.h"

namespace dsv4::eval {

using ojson = nlohmann::ordered_json;

bool is_v41_preset(SynthPreset p) { return p == SynthPreset::tiny_v41 || p == SynthPreset::flash_v41; }

namespace {

// The dimensions that differ between the V4.1 presets (v4.1 §2.1; tiny: the `tiny` fixture's
// text dimensions, and every count of the Engram, DSpark and vision parts scaled down).
struct V41Dims {
  int64_t vocab, hidden, heads, head_dim, q_lora, o_groups, o_lora, inter, experts, topk_experts;
  int64_t index_heads, index_dim, index_topk, candidate_topk_blocks;
  int64_t engram_heads, engram_head_dim, engram_vocab, engram_compressed_vocab;
  int64_t dspark_experts, dspark_topk, markov_rank;
  int64_t vision_layers, vision_hidden, vision_heads, vision_inter;
};

V41Dims v41_dims(SynthPreset p) {
  if (p == SynthPreset::flash_v41)
    return {129280, 5120, 64, 512, 1280, 8, 1024, 2304, 384, 6, 32, 128, 512, 2048,
            8, 256, 16000000, 99092, 128, 3, 256, 32, 1024, 16, 2816};
  return {1024, 256, 4, 128, 128, 2, 128, 128, 8, 2, 4, 64, 16, 4, 2, 32, 31, 768, 4, 2, 64, 2, 64, 4, 128};
}

// The released schedule (v4.1 §2.1, Appendix A).
constexpr int64_t kLayers = 40;
int v41_ratio(int64_t l) { return l < 2 ? 0 : (l < 20 ? 2 : 1); }
const std::vector<int64_t> kKvSources = {2, 8, 14, 20};
const std::vector<int64_t> kIndexSources = {2, 8, 14, 20, 24, 28, 32, 36};
constexpr int64_t kCandidateSource = 20;
const std::vector<int64_t> kEngramLayers = {1, 14};

std::vector<int64_t> below(const std::vector<int64_t>& ids, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t id : ids)
    if (id < n) out.push_back(id);
  return out;
}

}  // namespace

ojson synth_v41_config(const SynthOptions& opt) {
  V41Dims d = v41_dims(opt.preset);
  const int64_t L = opt.layers > 0 ? opt.layers : kLayers;
  if (opt.experts > 0) d.experts = opt.experts;
  if (opt.vocab > 0) d.vocab = opt.vocab;
  if (opt.engram_vocab > 0) d.engram_vocab = opt.engram_vocab;
  d.topk_experts = std::min(d.topk_experts, d.experts);
  d.dspark_experts = std::min(d.dspark_experts, d.experts);
  d.dspark_topk = std::min(d.dspark_topk, d.dspark_experts);
  d.engram_compressed_vocab = std::min(d.engram_compressed_vocab, d.vocab);

  std::vector<int> ratios;
  for (int64_t l = 0; l < L; ++l) ratios.push_back(v41_ratio(l));
  const int64_t stages = 3;   // v4.1 §7.1
  for (int64_t s = 0; s < stages; ++s) ratios.push_back(0);
  const std::vector<int64_t> index_sources = below(kIndexSources, L);
  const int64_t candidate = kCandidateSource < L ? kCandidateSource : -1;

  io::V41EngramConfig engram;
  engram.layer_ids = below(kEngramLayers, L);
  engram.max_ngram_size = 4;
  engram.n_heads = d.engram_heads;
  engram.vocab_size = d.engram_vocab;
  std::vector<int64_t> rows;
  for (const auto& primes : io::engram_primes(engram)) {
    int64_t sum = 0;
    for (int64_t p : primes) sum += p;
    rows.push_back(sum);
  }
  std::vector<int64_t> taps;
  for (int64_t l = std::max<int64_t>(0, L - 3); l < L; ++l) taps.push_back(l);
  // Released token ids where the vocabulary has them, else its last id (as the 0731 presets do).
  auto token = [&](int64_t id) { return std::min<int64_t>(id, d.vocab - 1); };

  ojson text;
  text["model_type"] = "deepseek_v41_text";
  text["vocab_size"] = d.vocab;
  text["hidden_size"] = d.hidden;
  text["num_hidden_layers"] = L;
  text["num_attention_heads"] = d.heads;
  text["num_key_value_heads"] = 1;
  text["head_dim"] = d.head_dim;
  text["qk_rope_head_dim"] = 64;
  text["q_lora_rank"] = d.q_lora;
  text["o_groups"] = d.o_groups;
  text["o_lora_rank"] = d.o_lora;
  text["sliding_window"] = 128;
  text["compress_ratios"] = ratios;
  text["compress_rope_theta"] = 160000;
  text["rope_theta"] = 10000;
  text["rope_scaling"] = {{"rope_type", "yarn"},
                          {"factor", 16},
                          {"original_max_position_embeddings", 65536},
                          {"beta_fast", 32},
                          {"beta_slow", 1}};
  text["max_position_embeddings"] = 1048576;
  text["kv_source_layer_ids"] = below(kKvSources, L);
  text["index_source_layer_ids"] = index_sources;
  text["index_n_heads"] = d.index_heads;
  text["index_head_dim"] = d.index_dim;
  text["index_topk"] = d.index_topk;
  text["candidate_source_layer_id"] = candidate;
  text["candidate_topk_blocks"] = d.candidate_topk_blocks;
  text["candidate_block_size"] = 8;
  text["hc_mult"] = 4;
  text["hc_sinkhorn_iters"] = 20;
  text["hc_eps"] = 1e-06;
  text["rms_norm_eps"] = 1e-20;
  text["n_routed_experts"] = d.experts;
  text["num_experts_per_tok"] = d.topk_experts;
  text["n_shared_experts"] = 1;
  text["moe_intermediate_size"] = d.inter;
  text["scoring_func"] = "sqrtsoftplus";
  text["topk_method"] = "noaux_tc";
  text["norm_topk_prob"] = true;
  text["routed_scaling_factor"] = 1.5;
  text["swiglu_limit"] = 10.0;
  text["engram_layer_ids"] = engram.layer_ids;
  text["engram_num_embeddings"] = rows;
  text["engram_max_ngram_size"] = engram.max_ngram_size;
  text["engram_n_heads"] = d.engram_heads;
  text["engram_head_dim"] = d.engram_head_dim;
  text["engram_vocab_size"] = d.engram_vocab;
  text["engram_compressed_vocab_size"] = d.engram_compressed_vocab;
  text["engram_pad_token_id"] = 2;
  text["num_nextn_predict_layers"] = stages;
  text["dspark_block_size"] = 5;
  text["dspark_noise_token_id"] = token(128799);
  text["dspark_target_layer_ids"] = taps;
  text["dspark_markov_rank"] = d.markov_rank;
  text["dspark_n_routed_experts"] = d.dspark_experts;
  text["dspark_num_experts_per_tok"] = d.dspark_topk;
  text["hidden_act"] = "silu";
  text["attention_bias"] = false;
  text["attention_dropout"] = 0.0;
  text["tie_word_embeddings"] = false;
  text["initializer_range"] = 0.02;
  text["use_cache"] = true;

  ojson vision;
  vision["model_type"] = "deepseek_v41_vision";
  vision["num_hidden_layers"] = d.vision_layers;
  vision["hidden_size"] = d.vision_hidden;
  vision["num_attention_heads"] = d.vision_heads;
  vision["intermediate_size"] = d.vision_inter;
  vision["patch_size"] = 14;
  vision["rope_theta"] = 10000;
  vision["downsample_ratio"] = 3;
  vision["max_image_tokens"] = 1024;
  vision["min_pixels"] = 295936;
  vision["max_wh_ratio"] = nullptr;

  ojson j;
  j["architectures"] = {"DeepseekV41ForCausalLM"};
  j["model_type"] = "deepseek_v41";
  j["dtype"] = "bfloat16";
  j["bos_token_id"] = 0;
  j["eos_token_id"] = 1;
  j["pad_token_id"] = 2;
  j["image_token_id"] = token(129264);
  j["quantization_config"] = {{"quant_method", "fp8"},
                              {"activation_scheme", "dynamic"},
                              {"weight_block_size", {32, 32}},
                              {"scale_fmt", "ue8m0"},
                              {"expert_dtype", "fp4"}};
  j["text_config"] = std::move(text);
  j["vision_config"] = std::move(vision);
  return j;
}

std::string synth_engram_token_map(const io::ModelConfig& c) {
  const int64_t C = c.v41.engram.compressed_vocab_size;
  std::string bytes(size_t(c.vocab_size) * 4, '\0');
  for (int64_t id = 0; id < c.vocab_size; ++id) {
    const uint32_t v = uint32_t(id % C);
    for (int k = 0; k < 4; ++k) bytes[size_t(id * 4 + k)] = char((v >> (8 * k)) & 0xff);
  }
  return bytes;
}

}  // namespace dsv4::eval

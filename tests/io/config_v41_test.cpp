// DeepSeek-V4.1-Flash's root config (v4.1 §2): the released file parses into the typed config,
// the derived schedule is Appendix A row by row, the pre-release spelling (§2.4) is refused by
// name, and every other malformed field gives an error naming it.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/engram_primes.h"
#include "io/v41_release_config.h"

namespace dsv4::io {
namespace {

using nlohmann::json;

ModelConfig release() {
  auto c = parse_config(test::kV41ReleaseConfig, "config.json");
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

TEST(ConfigV41, ParsesTheReleasedConfig) {
  const ModelConfig c = release();
  EXPECT_EQ(c.architecture, Architecture::v41);
  EXPECT_EQ(release_name(c), "V4.1-Flash");
  EXPECT_EQ(architecture_name(c), "DeepSeek-V4.1");
  // The keys V4.1 shares with V4 (v4.1 §2.1 text_config).
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 5120);
  EXPECT_EQ(c.num_hidden_layers, 40);
  EXPECT_EQ(c.num_attention_heads, 64);
  EXPECT_EQ(c.head_dim, 512);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.q_lora_rank, 1280);
  EXPECT_EQ(c.o_groups, 8);
  EXPECT_EQ(c.o_lora_rank, 1024);
  EXPECT_EQ(c.sliding_window, 128);
  EXPECT_EQ(c.compress_ratios.size(), 43u);
  EXPECT_EQ(c.compress_rope_theta, 160000);
  EXPECT_EQ(c.rope_theta, 10000);
  EXPECT_EQ(c.rope_factor, 16);
  EXPECT_EQ(c.rope_original_max_pos, 65536);
  EXPECT_EQ(c.beta_fast, 32);
  EXPECT_EQ(c.beta_slow, 1);
  EXPECT_EQ(c.max_position_embeddings, 1048576);
  EXPECT_EQ(c.index_n_heads, 32);
  EXPECT_EQ(c.index_head_dim, 128);
  EXPECT_EQ(c.index_topk, 512);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_EQ(c.hc_eps, 1e-6);
  EXPECT_EQ(c.rms_norm_eps, 1e-20);
  EXPECT_EQ(c.n_routed_experts, 384);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.moe_intermediate_size, 2304);
  EXPECT_EQ(c.num_hash_layers, 0);
  EXPECT_EQ(c.routed_scaling_factor, 1.5);
  EXPECT_EQ(c.swiglu_limit, 10.0);
  EXPECT_TRUE(c.experts_fp4);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 1);
  // DSpark: 3 stages, and num_nextn_predict_layers agrees (unlike 0731).
  EXPECT_EQ(c.num_nextn_predict_layers, 3);
  EXPECT_EQ(c.drafter(), DrafterKind::dspark);
  EXPECT_EQ(c.drafter_blocks(), 3);
  EXPECT_EQ(drafter_name(c), "DSpark with 3 stages");
  EXPECT_EQ(c.dspark.block_size, 5);
  EXPECT_EQ(c.dspark.noise_token_id, 128799);
  EXPECT_EQ(c.dspark.target_layer_ids, (std::vector<int64_t>{37, 38, 39}));
  EXPECT_EQ(c.dspark.markov_rank, 256);
  // V4.1's own keys.
  const V41Config& v = c.v41;
  EXPECT_EQ(v.kv_source_layer_ids, (std::vector<int64_t>{2, 8, 14, 20}));
  EXPECT_EQ(v.index_source_layer_ids, (std::vector<int64_t>{2, 8, 14, 20, 24, 28, 32, 36}));
  EXPECT_EQ(v.candidate_source_layer_id, 20);
  EXPECT_EQ(v.candidate_topk_blocks, 2048);
  EXPECT_EQ(v.candidate_block_size, 8);
  EXPECT_EQ(v.dspark_n_routed_experts, 128);
  EXPECT_EQ(v.dspark_num_experts_per_tok, 3);
  EXPECT_EQ(v.fp8_block, 32);
  EXPECT_EQ(v.pad_token_id, 2);
  EXPECT_EQ(v.image_token_id, 129264);
  EXPECT_EQ(v.engram.layer_ids, (std::vector<int64_t>{1, 14}));
  EXPECT_EQ(v.engram.num_embeddings, (std::vector<int64_t>{384006168, 384016682}));
  EXPECT_EQ(v.engram.max_ngram_size, 4);
  EXPECT_EQ(v.engram.n_heads, 8);
  EXPECT_EQ(v.engram.head_dim, 256);
  EXPECT_EQ(v.engram.columns(), 24);
  EXPECT_EQ(v.engram.vocab_size, 16000000);
  EXPECT_EQ(v.engram.compressed_vocab_size, 99092);
  EXPECT_EQ(v.engram.pad_token_id, 2);
  EXPECT_EQ(v.vision.num_hidden_layers, 32);
  EXPECT_EQ(v.vision.hidden_size, 1024);
  EXPECT_EQ(v.vision.num_attention_heads, 16);
  EXPECT_EQ(v.vision.intermediate_size, 2816);
  EXPECT_EQ(v.vision.patch_size, 14);
  EXPECT_EQ(v.vision.rope_theta, 10000);
  EXPECT_EQ(v.vision.downsample_ratio, 3);
  EXPECT_EQ(v.vision.max_image_tokens, 1024);
  EXPECT_EQ(v.vision.min_pixels, 295936);
  EXPECT_FALSE(v.vision.max_wh_ratio.has_value());
  EXPECT_EQ(v.decoder_start, 20);
}

// v4.1 §5.3.2: the prime moduli listed there, and their sums = engram_num_embeddings.
TEST(ConfigV41, EngramPrimesAreTheSpecs) {
  const auto primes = engram_primes(release().v41.engram);
  ASSERT_EQ(primes.size(), 2u);
  EXPECT_EQ(primes[0], (std::vector<int64_t>{
                           16000057, 16000079, 16000081, 16000097, 16000121, 16000129, 16000133, 16000183,
                           16000189, 16000207, 16000211, 16000253, 16000277, 16000289, 16000307, 16000321,
                           16000339, 16000381, 16000393, 16000399, 16000403, 16000409, 16000447, 16000463}));
  EXPECT_EQ(primes[1], (std::vector<int64_t>{
                           16000477, 16000487, 16000499, 16000507, 16000511, 16000573, 16000609, 16000627,
                           16000667, 16000669, 16000693, 16000697, 16000711, 16000729, 16000759, 16000769,
                           16000781, 16000799, 16000813, 16000819, 16000841, 16000877, 16000879, 16000889}));
}

// Appendix A, all 43 rows: the derived role of every layer (v4.1 §2.3).
TEST(ConfigV41, ScheduleIsAppendixA) {
  enum Index { none, owner, q_side };
  enum Cand { no, source, consumer };
  struct Row {
    int ratio;
    int64_t kv_group;
    bool kv_source;
    Index index;
    int64_t topk_from;
    Cand cand;
    int64_t engram;
    int64_t experts, topk;
  };
  std::vector<Row> a;
  a.push_back({0, -1, false, none, -1, no, -1, 384, 6});   // 0
  a.push_back({0, -1, false, none, -1, no, 0, 384, 6});    // 1: Engram k = 0
  for (int64_t g : {2, 8, 14}) {
    a.push_back({2, g, true, owner, g, no, g == 14 ? 1 : -1, 384, 6});   // 2, 8, 14 (Engram k = 1)
    for (int i = 0; i < 5; ++i) a.push_back({2, g, false, none, g, no, -1, 384, 6});   // 3-7, 9-13, 15-19
  }
  a.push_back({1, 20, true, owner, 20, source, -1, 384, 6});   // 20
  for (int i = 0; i < 3; ++i) a.push_back({1, 20, false, none, 20, no, -1, 384, 6});   // 21-23
  for (int64_t s : {24, 28, 32, 36}) {
    a.push_back({1, 20, false, q_side, s, consumer, -1, 384, 6});
    for (int i = 0; i < 3; ++i) a.push_back({1, 20, false, none, s, no, -1, 384, 6});
  }
  for (int s = 0; s < 3; ++s) a.push_back({0, -1, false, none, -1, no, -1, 128, 3});   // mtp.0-2 (40-42)
  ASSERT_EQ(a.size(), 43u);

  const ModelConfig c = release();
  ASSERT_EQ(c.v41.layers.size(), 43u);
  for (size_t l = 0; l < a.size(); ++l) {
    const V41Layer& r = c.v41.layers[l];
    SCOPED_TRACE("layer " + std::to_string(l));
    EXPECT_EQ(r.ratio, a[l].ratio);
    EXPECT_EQ(r.kv_group, a[l].kv_group);
    EXPECT_EQ(r.kv_source, a[l].kv_source);
    EXPECT_EQ(r.index_source, a[l].index != none);
    EXPECT_EQ(r.index_source && !r.kv_source, a[l].index == q_side);
    EXPECT_EQ(r.index_group, a[l].topk_from);
    EXPECT_EQ(r.candidate_source, a[l].cand == source);
    EXPECT_EQ(r.candidate_consumer, a[l].cand == consumer);
    EXPECT_EQ(r.engram, a[l].engram);
    EXPECT_EQ(r.n_experts, a[l].experts);
    EXPECT_EQ(r.experts_per_tok, a[l].topk);
    EXPECT_EQ(r.dspark_stage, l >= 40);
    EXPECT_EQ(r.decoder, l >= 20 && l < 40);   // encoder 0-19, decoder 20-39
    EXPECT_EQ(r.tapped, l >= 37 && l < 40);    // taps: inputs of 37, 38, 39
  }
}

// Parses the released config after `edit`; expects failure with `code` and `part` in the message.
void expect_refused(const std::function<void(json&)>& edit, StatusCode code, const std::string& part) {
  json j = json::parse(test::kV41ReleaseConfig);
  edit(j);
  auto c = parse_config(j.dump(), "config.json");
  ASSERT_FALSE(c.ok()) << "expected an error containing: " << part;
  EXPECT_EQ(c.status().code(), code) << c.status().to_string();
  EXPECT_NE(c.status().message().find(part), std::string::npos) << c.status().message();
  EXPECT_EQ(c.status().message().rfind("config.json: ", 0), 0u) << c.status().message();
}

// v4.1 §2.4: the pre-release spelling is refused, naming the key and its released name; so is a
// file with both spellings.
TEST(ConfigV41, RefusesThePreReleaseSpelling) {
  const std::vector<std::pair<std::string, std::string>> text = {
      {"kv_source_layers", "kv_source_layer_ids"},
      {"index_source_layers", "index_source_layer_ids"},
      {"candidate_source_layer", "candidate_source_layer_id"},
      {"engram_pad_id", "engram_pad_token_id"},
      {"dspark_n_activated_experts", "dspark_num_experts_per_tok"}};
  for (const auto& [old_name, name] : text) {
    const std::string want = "text_config: key '" + old_name + "' is the pre-release spelling of '" + name + "'";
    expect_refused([&, n = name, o = old_name](json& j) {   // renamed
      j["text_config"][o] = j["text_config"][n];
      j["text_config"].erase(n);
    }, StatusCode::unsupported, want);
    expect_refused([&, n = name, o = old_name](json& j) { j["text_config"][o] = j["text_config"][n]; },   // both
                   StatusCode::unsupported, want);
  }
  expect_refused([](json& j) {
    j["vision_config"]["max_num_tokens"] = 1024;
    j["vision_config"].erase("max_image_tokens");
  }, StatusCode::unsupported, "vision_config: key 'max_num_tokens' is the pre-release spelling of 'max_image_tokens'");
  expect_refused([](json& j) { j["model_type"] = "deepseek_v4.1"; }, StatusCode::unsupported,
                 "model_type \"deepseek_v4.1\" is the pre-release spelling of \"deepseek_v41\" (v4.1 §2.4)");
  expect_refused([](json& j) { j["text_config"]["model_type"] = "deepseek_v4.1_text"; }, StatusCode::unsupported,
                 "text_config: model_type \"deepseek_v4.1_text\" is the pre-release spelling");
  expect_refused([](json& j) { j["vision_config"]["model_type"] = "deepseek_v4.1_vision"; }, StatusCode::unsupported,
                 "vision_config: model_type \"deepseek_v4.1_vision\" is the pre-release spelling");
  expect_refused([](json& j) { j["architectures"] = {"DeepseekV41ForConditionalGeneration"}; },
                 StatusCode::unsupported, "is the pre-release spelling of [\"DeepseekV41ForCausalLM\"]");
}

TEST(ConfigV41, RefusesMalformedFields) {
  struct Case {
    std::function<void(json&)> edit;
    StatusCode code;
    std::string part;
  };
  auto text = [](json& j) -> json& { return j["text_config"]; };
  const std::vector<Case> cases = {
      {[](json& j) { j["architectures"] = {"DeepseekV4ForCausalLM"}; }, StatusCode::unsupported, "architectures"},
      {[](json& j) { j["model_type"] = "deepseek_v42"; j.erase("text_config"); }, StatusCode::unsupported,
       "model_type 'deepseek_v42' is not deepseek_v4"},
      {[](json& j) { j.erase("vision_config"); }, StatusCode::invalid_argument, "missing object 'vision_config'"},
      {[](json& j) { j["text_config"] = 3; }, StatusCode::invalid_argument, "missing object 'text_config'"},
      {[](json& j) { j["dtype"] = "float16"; }, StatusCode::unsupported, "key 'dtype'"},
      {[](json& j) { j["image_token_id"] = 129280; }, StatusCode::invalid_argument,
       "key 'image_token_id' = 129280 is not a token id"},
      {[](json& j) { j.erase("pad_token_id"); }, StatusCode::invalid_argument, "missing key 'pad_token_id'"},
      {[](json& j) { j["quantization_config"]["weight_block_size"] = {128, 128}; }, StatusCode::unsupported,
       "quantization_config: key 'weight_block_size' must be [32, 32]"},
      {[](json& j) { j["quantization_config"]["expert_dtype"] = "fp8"; }, StatusCode::unsupported,
       "quantization_config: key 'expert_dtype'"},
      {[&](json& j) { text(j)["hidden_size"] = "5120"; }, StatusCode::invalid_argument,
       "text_config: key 'hidden_size' must be an integer"},
      {[&](json& j) { text(j).erase("rms_norm_eps"); }, StatusCode::invalid_argument,
       "text_config: missing key 'rms_norm_eps'"},
      {[&](json& j) { text(j)["hidden_size"] = 5104; }, StatusCode::unsupported,
       "hidden_size must be a multiple of 32"},
      {[&](json& j) { text(j)["num_key_value_heads"] = 8; }, StatusCode::unsupported, "num_key_value_heads"},
      {[&](json& j) { text(j)["tie_word_embeddings"] = true; }, StatusCode::unsupported, "tie_word_embeddings"},
      {[&](json& j) { text(j)["rope_scaling"].erase("rope_type"); text(j)["rope_scaling"]["type"] = "yarn"; },
       StatusCode::invalid_argument, "text_config: rope_scaling: missing key 'rope_type'"},
      {[&](json& j) { text(j)["compress_ratios"][5] = 4; }, StatusCode::unsupported,
       "compress_ratios entry 4 (only 0, 1, 2 exist in V4.1)"},
      {[&](json& j) { text(j)["compress_ratios"][41] = 1; }, StatusCode::unsupported, "DSpark stages are SWA-only"},
      {[&](json& j) { text(j)["num_nextn_predict_layers"] = 1; }, StatusCode::invalid_argument,
       "compress_ratios has 43 entries, expected num_hidden_layers + num_nextn_predict_layers = 40 + 1"},
      {[&](json& j) { text(j)["compress_ratios"][8] = 1; }, StatusCode::invalid_argument,
       "layer 9 (compress ratio 2) reads the compressed KV of layer 8, whose ratio is 1"},
      {[&](json& j) { text(j)["compress_ratios"][9] = 1; }, StatusCode::invalid_argument,
       "layer 9 (compress ratio 1) reads the compressed KV of layer 8, whose ratio is 2"},
      {[&](json& j) { text(j)["kv_source_layer_ids"] = {8, 14, 20}; }, StatusCode::invalid_argument,
       "layer 2 (compress ratio 2) has no KV source at or before it"},
      {[&](json& j) { text(j)["kv_source_layer_ids"] = {2, 8, 14, 20, 22}; }, StatusCode::invalid_argument,
       "KV source layer 22 is not in index_source_layer_ids"},
      {[&](json& j) { text(j)["kv_source_layer_ids"] = {2, 14, 8, 20}; }, StatusCode::invalid_argument,
       "'kv_source_layer_ids' must be strictly increasing"},
      {[&](json& j) { text(j)["index_source_layer_ids"] = {1, 2, 8, 14, 20}; }, StatusCode::invalid_argument,
       "layer 1 (compress ratio 0) is listed as a KV or index source"},
      {[&](json& j) { text(j)["index_source_layer_ids"] = {2, 8, 14, 20, 40}; }, StatusCode::invalid_argument,
       "layer 40 is not a main layer"},
      {[&](json& j) { text(j)["candidate_source_layer_id"] = 21; }, StatusCode::invalid_argument,
       "candidate_source_layer_id 21 is neither -1"},
      {[&](json& j) { text(j)["candidate_source_layer_id"] = 14; }, StatusCode::invalid_argument,
       "layer 20 (compress ratio 1) would filter by the candidate blocks of layer 14"},
      {[&](json& j) { text(j)["candidate_block_size"] = 0; }, StatusCode::invalid_argument, "'candidate_block_size'"},
      {[&](json& j) { text(j)["engram_num_embeddings"][1] = 384016681; }, StatusCode::invalid_argument,
       "engram_num_embeddings[1] = 384016681, but the prime rule of v4.1 §5.3.2 gives 384016682 rows"},
      {[&](json& j) { text(j)["engram_num_embeddings"] = {384006168}; }, StatusCode::invalid_argument,
       "engram_num_embeddings has 1 entries for 2 engram_layer_ids"},
      {[&](json& j) { text(j)["engram_head_dim"] = 250; }, StatusCode::unsupported, "engram_head_dim must be a multiple of 32"},
      {[&](json& j) { text(j)["engram_compressed_vocab_size"] = 129281; }, StatusCode::invalid_argument,
       "'engram_compressed_vocab_size' = 129281 is out of range"},
      {[&](json& j) { text(j)["engram_vocab_size"] = int64_t(1) << 40; }, StatusCode::invalid_argument,
       "'engram_vocab_size'"},
      {[&](json& j) { text(j)["engram_layer_ids"] = {1, 40}; }, StatusCode::invalid_argument,
       "'engram_layer_ids': layer 40 is not a main layer"},
      {[&](json& j) { text(j)["dspark_num_experts_per_tok"] = 129; }, StatusCode::invalid_argument,
       "'dspark_num_experts_per_tok' = 129 is out of range"},
      {[&](json& j) { text(j)["dspark_target_layer_ids"] = {38, 39, 40}; }, StatusCode::invalid_argument,
       "layer 40 is not a main layer"},
      {[&](json& j) { text(j)["scoring_func"] = "sigmoid"; }, StatusCode::unsupported, "scoring_func"},
      {[&](json& j) { text(j)["norm_topk_prob"] = false; }, StatusCode::unsupported, "norm_topk_prob"},
      {[](json& j) { j["vision_config"]["hidden_size"] = 1000; }, StatusCode::unsupported,
       "vision_config: hidden_size / num_attention_heads must be a multiple of 4"},
      {[](json& j) { j["vision_config"].erase("max_wh_ratio"); }, StatusCode::invalid_argument,
       "vision_config: missing key 'max_wh_ratio'"},
      {[](json& j) { j["vision_config"]["num_hidden_layers"] = 0; }, StatusCode::invalid_argument,
       "vision_config: key 'num_hidden_layers' = 0 is out of range"},
  };
  for (const auto& c : cases) expect_refused(c.edit, c.code, c.part);
}

}  // namespace
}  // namespace dsv4::io

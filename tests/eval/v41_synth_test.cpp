// `dsv4 synth --preset flash-v41 / tiny-v41` (v4.1 §2.1, §3): the config is the release's, the
// written checkpoint opens, a defective one is refused naming the tensor, the model loader takes a
// valid one (with its Engram token map), and `dsv4 bench` runs on it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "eval/bench.h"
#include "eval/synth.h"
#include "io/checkpoint.h"
#include "io/inventory.h"
#include "io/safetensors.h"
#include "io/test_tmp_dir.h"
#include "io/v41_release_config.h"
#include "model/model.h"
#include "quiet_synth_options.h"

namespace dsv4::eval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json config_json(SynthPreset p, int64_t layers = 0, int64_t engram_vocab = 0) {
  SynthOptions o = test::quiet_synth_options(p);
  o.layers = layers;
  o.engram_vocab = engram_vocab;
  auto text = synth_config_json(o);
  EXPECT_TRUE(text.ok()) << text.status().to_string();
  return text.ok() ? json::parse(*text) : json();
}

// The flash-v41 preset writes the released config, key for key (the Engram row counts come from
// the prime rule, so this also checks it against the release's numbers).
TEST(SynthV41, FlashPresetWritesTheReleasedConfig) {
  EXPECT_EQ(config_json(SynthPreset::flash_v41), json::parse(test::kV41ReleaseConfig));
}

// --layers keeps the first N layers' schedule; --engram-vocab shrinks the tables by the prime rule.
TEST(SynthV41, LayersAndEngramVocabKeepTheConfigConsistent) {
  const json t = config_json(SynthPreset::flash_v41, 16, 31)["text_config"];
  EXPECT_EQ(t["num_hidden_layers"], 16);
  EXPECT_EQ(t["compress_ratios"].size(), 19u);
  EXPECT_EQ(t["kv_source_layer_ids"], json({2, 8, 14}));
  EXPECT_EQ(t["index_source_layer_ids"], json({2, 8, 14}));
  EXPECT_EQ(t["candidate_source_layer_id"], -1);
  EXPECT_EQ(t["engram_layer_ids"], json({1, 14}));
  EXPECT_EQ(t["dspark_target_layer_ids"], json({13, 14, 15}));
  // Primes above 30, the second layer's past the first's 24.
  const std::vector<int64_t> rows = t["engram_num_embeddings"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LT(rows[0], rows[1]);
  EXPECT_LT(rows[1], 24 * 300);

  SynthOptions o = test::quiet_synth_options(SynthPreset::flash);
  o.engram_vocab = 31;
  EXPECT_FALSE(synth_config_json(o).ok());   // no Engram in V4
}

class SynthV41Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthOptions o = test::quiet_synth_options(SynthPreset::tiny_v41);
    o.layers = 25;   // every role: SWA, Engram x2, ratio-2 and ratio-1 sources, candidate consumer 24
    o.seed = 3;
    ASSERT_TRUE(synth_checkpoint(o, dir_.path()).ok());
  }
  std::string path(const std::string& f) const { return dir_ / f; }
  std::string shard_of(const std::string& tensor) const {
    std::ifstream in(path("model.safetensors.index.json"));
    return json::parse(in)["weight_map"][tensor].get<std::string>();
  }
  // Rewrites the shard holding `tensor` after `edit` changed its tensor list, and the index to match.
  void rewrite(const std::string& tensor,
               const std::function<void(std::vector<io::TensorSpec>&, std::vector<std::vector<uint8_t>>&)>& edit) {
    const std::string shard = shard_of(tensor);
    std::vector<io::TensorSpec> specs;
    std::vector<std::vector<uint8_t>> data;
    {
      auto st = io::open_safetensors(path(shard));
      ASSERT_TRUE(st.ok()) << st.status().to_string();
      for (const auto& t : st->header.tensors) {
        specs.push_back({t.name, t.dtype, t.shape});
        data.emplace_back(t.data, t.data + t.nbytes());
      }
    }
    edit(specs, data);
    ASSERT_TRUE(io::write_safetensors(path(shard), specs, {{"format", "pt"}},
                                      [&](size_t i, std::vector<uint8_t>& out) { out = data[i]; })
                    .ok());
    json index;
    {
      std::ifstream in(path("model.safetensors.index.json"));
      index = json::parse(in);
    }
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end();)
      it = it.value() == shard ? index["weight_map"].erase(it) : std::next(it);
    for (const auto& t : specs) index["weight_map"][t.name] = shard;
    index["metadata"].erase("total_size");
    std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << index.dump(1);
  }
  void expect_error(StatusCode code, const std::string& part) {
    auto ck = io::Checkpoint::open(dir_.path());
    ASSERT_FALSE(ck.ok());
    EXPECT_EQ(ck.status().code(), code) << ck.status().to_string();
    EXPECT_NE(ck.status().message().find(part), std::string::npos) << ck.status().message();
  }

  test::TempDir dir_;
};

TEST_F(SynthV41Checkpoint, OpensWithEveryTensorOfTheInventory) {
  auto ck = io::Checkpoint::open(dir_.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  const io::ModelConfig& c = (*ck)->config();
  EXPECT_EQ(c.architecture, io::Architecture::v41);
  EXPECT_EQ(c.num_hidden_layers, 25);
  EXPECT_EQ(c.v41.decoder_start, 20);
  EXPECT_EQ((*ck)->tensor_count(), io::expected_tensors(c).size());
  // The nested config on disk, and the released layout's dtypes as loaded.
  std::ifstream in(path("config.json"));
  const json j = json::parse(in);
  EXPECT_EQ(j["text_config"]["model_type"], "deepseek_v41_text");
  EXPECT_EQ(j["vision_config"]["model_type"], "deepseek_v41_vision");
  EXPECT_EQ((*ck)->tensor("layers.1.engram.embed.weight").dtype, DType::fp8_e4m3);
  EXPECT_EQ((*ck)->tensor("layers.1.engram.embed.scale").shape, (std::vector<int64_t>{c.v41.engram.num_embeddings[0], 1}));
  EXPECT_EQ((*ck)->tensor("layers.24.ffn.experts.0.w1.weight").dtype, DType::fp4_e2m1);
  EXPECT_EQ((*ck)->tensor("layers.2.attn.wq_a.scale").shape, (std::vector<int64_t>{4, 8}));   // [128, 256] / 32
  EXPECT_NE((*ck)->find("vision.blocks.1.mlp.w2.weight"), nullptr);
  EXPECT_EQ((*ck)->find("layers.20.attn.compressor.wgate.weight"), nullptr);
  EXPECT_TRUE(fs::exists(path("SHA256SUMS")));
  // DSpark stages in shards of their own, after the rest (as for 0731).
  EXPECT_NE(shard_of("mtp.0.main_proj.weight"), shard_of("vision.norm.weight"));
}

// bench decodes at a synthetic depth; the state grows at the packed rate of v4.1 §8.1 (tiny-v41:
// Dh 128, Di 64 -> (72 + 34) / 2 per ratio-2 source and 72 + 34 for the ratio-1 source).
TEST_F(SynthV41Checkpoint, BenchRunsAndTheStateGrowsAtThePackedRate) {
  BenchOptions o;
  o.model_dir = dir_.path();
  o.prefill_lengths = {9};
  o.decode_contexts = {0, 600};
  o.synthetic_context = true;
  o.decode_tokens = 2;
  o.repetitions = 1;
  o.measure_bandwidth = false;
  auto r = run_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->spec_state_bytes_per_token, 3 * 106.0 / 2 + 106.0);
  EXPECT_NEAR(r->state_bytes_per_token, r->spec_state_bytes_per_token, 0.02 * r->spec_state_bytes_per_token);
}

TEST_F(SynthV41Checkpoint, TheModelLoaderAcceptsItWithItsEngramTokenMap) {
  auto m = model::load_model(dir_.path());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->engram.columns(), 2 * 3);   // tiny-v41: 2 heads x n-grams 2..4
  EXPECT_TRUE((*m)->w.has_dspark);            // the DSpark stages (v4.1 §7)
  // Without the token map (v4.1 §5.3.1) it says what is missing.
  fs::remove(path("engram_token_map.i32"));
  m = model::load_model(dir_.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::not_found) << m.status().to_string();
  EXPECT_NE(m.status().message().find("Engram token map"), std::string::npos) << m.status().message();
  // A defective checkpoint reports its defect.
  fs::remove(path("config.json"));
  m = model::load_model(dir_.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::not_found) << m.status().to_string();
}

TEST_F(SynthV41Checkpoint, AMissingTensorIsNamed) {
  rewrite("layers.14.engram.embed.scale", [](auto& specs, auto& data) {
    auto it = std::find_if(specs.begin(), specs.end(), [](const io::TensorSpec& t) { return t.name == "layers.14.engram.embed.scale"; });
    data.erase(data.begin() + (it - specs.begin()));
    specs.erase(it);
  });
  expect_error(StatusCode::not_found, "tensor 'layers.14.engram.embed.scale': missing (expected F8_E8M0 [");
}

TEST_F(SynthV41Checkpoint, AWrongShapeIsNamed) {
  rewrite("layers.20.attn.compressor.wkv.weight", [](auto& specs, auto&) {
    for (auto& t : specs)
      if (t.name == "layers.20.attn.compressor.wkv.weight") std::swap(t.shape[0], t.shape[1]);
  });
  expect_error(StatusCode::corrupt_data, "tensor 'layers.20.attn.compressor.wkv.weight': shape [256,128], expected [128,256]");
}

TEST_F(SynthV41Checkpoint, AWrongDtypeIsNamed) {
  rewrite("layers.3.ffn.gate.bias_vl", [](auto& specs, auto& data) {
    for (size_t i = 0; i < specs.size(); ++i)
      if (specs[i].name == "layers.3.ffn.gate.bias_vl") {
        specs[i].dtype = DType::bf16;
        data[i].resize(data[i].size() / 2);
      }
  });
  expect_error(StatusCode::corrupt_data, "tensor 'layers.3.ffn.gate.bias_vl': dtype BF16, expected F32");
}

// A tensor another role would have: layer 20 compresses at ratio 1, with no gate (v4.1 §3.4).
TEST_F(SynthV41Checkpoint, ATensorOfAnotherRoleIsUnknown) {
  rewrite("layers.20.attn.compressor.wkv.weight", [](auto& specs, auto& data) {
    for (size_t i = 0; i < specs.size(); ++i)
      if (specs[i].name == "layers.20.attn.compressor.wkv.weight") {
        io::TensorSpec gate = specs[i];
        gate.name = "layers.20.attn.compressor.wgate.weight";
        specs.push_back(gate);
        data.push_back(data[i]);
        return;
      }
  });
  expect_error(StatusCode::corrupt_data,
               "tensor 'layers.20.attn.compressor.wgate.weight': unknown (not part of a DeepSeek-V4.1 checkpoint");
}

}  // namespace
}  // namespace dsv4::eval

// The official releases Flash-0731 / Pro-0813 (addendum §A1-§A3, tests of §A8.1): their configs,
// their DSpark tensor inventory, and loading and greedy generation with the main stack of
// tiny checkpoints shaped like them, written by synth. The preview's MTP-1 stays as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "eval/synth.h"
#include "io/checkpoint.h"
#include "io/inventory.h"
#include "io/safetensors.h"
#include "io/test_tmp_dir.h"
#include "model/weights.h"
#include "quiet_synth_options.h"
#include "runtime/engine.h"
#include "test_paths.h"

namespace dsv4::eval {
namespace {

namespace fs = std::filesystem;
using namespace io;
using nlohmann::json;
using test::slurp;

ModelConfig config_of(SynthPreset p, int64_t layers = 0, std::vector<std::string> set = {}) {
  SynthOptions o = test::quiet_synth_options(p);
  o.layers = layers;
  o.set = std::move(set);
  auto text = synth_config_json(o);
  EXPECT_TRUE(text.ok()) << text.status().to_string();
  auto c = parse_config(text.ok() ? *text : "", "synth");
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

TEST(DsparkRelease, ConfigsParseAsReleased) {
  // addendum §A2.1: 46 / 64 compress_ratios entries, 3 stages, num_nextn_predict_layers still 1.
  const ModelConfig f = config_of(SynthPreset::flash_0731);
  std::vector<int> flash = {0, 0};
  for (int i = 0; i < 20; ++i) flash.insert(flash.end(), {4, 128});
  flash.insert(flash.end(), {4, 0, 0, 0});
  EXPECT_EQ(f.compress_ratios, flash);
  EXPECT_EQ(f.num_nextn_predict_layers, 1);
  EXPECT_EQ(f.revision, Revision::dspark);
  EXPECT_EQ(f.drafter(), DrafterKind::dspark);
  EXPECT_EQ(f.drafter_blocks(), 3);
  EXPECT_EQ(f.state_blocks(), 43);
  EXPECT_EQ(f.dspark.target_layer_ids, (std::vector<int64_t>{40, 41, 42}));
  EXPECT_EQ(f.dspark.block_size, 5);
  EXPECT_EQ(f.dspark.noise_token_id, 128799);
  EXPECT_EQ(f.dspark.markov_rank, 256);
  EXPECT_EQ(release_name(f), "0731");
  EXPECT_EQ(drafter_name(f), "DSpark with 3 stages");

  const ModelConfig p = config_of(SynthPreset::pro_0813);
  std::vector<int> pro = {128, 128};
  for (int i = 0; i < 29; ++i) pro.insert(pro.end(), {4, 128});
  pro.insert(pro.end(), {4, 0, 0, 0});
  EXPECT_EQ(p.compress_ratios, pro);
  EXPECT_EQ(p.drafter_blocks(), 3);
  EXPECT_EQ(p.dspark.target_layer_ids, (std::vector<int64_t>{58, 59, 60}));
  EXPECT_EQ(p.dspark.markov_rank, 512);
  EXPECT_EQ(release_name(p), "0813");

  // --layers keeps the 3 stages and taps the last 3 main layers (all of them below 3).
  const ModelConfig five = config_of(SynthPreset::flash_0731, 5);
  EXPECT_EQ(five.compress_ratios, (std::vector<int>{0, 0, 4, 128, 4, 0, 0, 0}));
  EXPECT_EQ(five.dspark.target_layer_ids, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(config_of(SynthPreset::tiny_0813, 2).dspark.target_layer_ids, (std::vector<int64_t>{0, 1}));
}

// addendum §A8.1: 72,317 tensors, 166,878,536,440 bytes; mtp.* 4,705 tensors in stages of
// 1,568 / 1,565 / 1,572. Pro-0813 (computed, §A7): 149,782 tensors, DSpark part 7,009 tensors of
// 41,979,375,900 bytes.
TEST(DsparkRelease, FullInventoriesMatchTheReleasedCounts) {
  struct Want { SynthPreset p; size_t tensors; uint64_t bytes; size_t stage[3]; uint64_t drafter_bytes; };
  for (const Want& w : {Want{SynthPreset::flash_0731, 72317, 166878536440ull, {1568, 1565, 1572}, 10862838300ull},
                        Want{SynthPreset::pro_0813, 149782, 0, {2336, 2333, 2340}, 41979375900ull}}) {
    const auto tensors = expected_tensors(config_of(w.p));
    EXPECT_EQ(tensors.size(), w.tensors);
    uint64_t total = 0, drafter = 0;
    std::map<std::string, size_t> per_stage;
    for (const auto& t : tensors) {
      total += t.nbytes();
      if (t.name.rfind("mtp.", 0) != 0) continue;
      drafter += t.nbytes();
      ++per_stage[t.name.substr(0, 6)];
    }
    if (w.bytes) {
      EXPECT_EQ(total, w.bytes);
    }
    EXPECT_EQ(drafter, w.drafter_bytes);
    EXPECT_EQ(per_stage["mtp.0."], w.stage[0]);
    EXPECT_EQ(per_stage["mtp.1."], w.stage[1]);
    EXPECT_EQ(per_stage["mtp.2."], w.stage[2]);
  }
  // addendum §A3.5: no preview MTP inputs in a DSpark checkpoint.
  const Inventory inv = model_inventory(config_of(SynthPreset::flash_0731));
  EXPECT_FALSE(inv.mtp.has_value());
  ASSERT_TRUE(inv.dspark.has_value());
  EXPECT_EQ(inv.dspark->main_proj.weight.shape, (std::vector<int64_t>{4096, 12288}));
  EXPECT_EQ(inv.dspark->main_proj.scale->shape, (std::vector<int64_t>{32, 96}));
  EXPECT_EQ(inv.dspark->confidence_proj.weight.shape, (std::vector<int64_t>{1, 4352}));
  EXPECT_EQ(inv.dspark->markov_w2.weight.name, "mtp.2.markov_head.markov_w2.weight");
  for (const BlockSpec& s : inv.dspark->stages) {
    EXPECT_EQ(s.kind, LayerKind::swa);
    EXPECT_TRUE(s.ffn.bias.has_value());   // non-hash routing
    EXPECT_FALSE(s.attn.compressor.has_value());
  }
}

TEST(DsparkRelease, BadDsparkKeysAreRefusedByName) {
  SynthOptions o = test::quiet_synth_options(SynthPreset::tiny_0731);   // 4 main layers, taps [1,2,3]
  struct Bad { const char* edit; const char* says; };
  for (const Bad& b : {Bad{"dspark_target_layer_ids=[1,1,3]", "'dspark_target_layer_ids' must be strictly increasing"},
                       Bad{"dspark_target_layer_ids=[3,2,1]", "'dspark_target_layer_ids' must be strictly increasing"},
                       Bad{"dspark_target_layer_ids=[1,2,4]", "'dspark_target_layer_ids': layer 4 is not a main layer"},
                       Bad{"dspark_target_layer_ids=[]", "'dspark_target_layer_ids' must be a non-empty array"},
                       Bad{"dspark_noise_token_id=1024", "'dspark_noise_token_id' = 1024 is not a token id"},
                       Bad{"dspark_markov_rank=0", "'dspark_markov_rank' = 0 is out of range"},
                       Bad{"compress_ratios=[0,0,4,128]", "one more entry per stage"},
                       Bad{"compress_ratios=[0,0,4,128,0,4,0]", "(DSpark stage 1) is 4"}}) {
    o.set = {b.edit};
    auto r = synth_config_json(o);
    ASSERT_FALSE(r.ok()) << b.edit;
    EXPECT_NE(r.status().to_string().find(b.says), std::string::npos) << b.edit << ": " << r.status().to_string();
  }
  // One dspark_* key makes the config a DSpark one, which then needs all four.
  o.set = {};
  json j = json::parse(synth_config_json(o).value());
  j.erase("dspark_markov_rank");
  auto c = parse_config(j.dump(), "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("missing key 'dspark_markov_rank'"), std::string::npos) << c.status().message();
}

TEST(DsparkRelease, ThePreviewIsMtp1) {
  auto c = load_config(test::fixture_dir("tiny") + "/checkpoint/config.json");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->revision, Revision::preview);
  EXPECT_EQ(c->drafter(), DrafterKind::mtp);
  EXPECT_EQ(c->drafter_blocks(), 1);
  EXPECT_EQ(c->state_blocks(), c->num_hidden_layers + 1);
  EXPECT_EQ(release_name(*c), "preview");
  EXPECT_EQ(drafter_name(*c), "MTP-1");
  EXPECT_TRUE(model_inventory(*c).mtp.has_value());
  const ModelConfig none = config_of(SynthPreset::tiny, 0, {"num_nextn_predict_layers=0", "compress_ratios=[0,4,128,4]"});
  EXPECT_EQ(drafter_name(none), "none");
}

// ---- Tiny checkpoints shaped like the releases ----

class DsparkCheckpoint : public ::testing::TestWithParam<SynthPreset> {
 protected:
  void SetUp() override {
    SynthOptions o = test::quiet_synth_options(GetParam());
    o.seed = 31;
    ASSERT_TRUE(synth_checkpoint(o, dir_.path(), &report_).ok());
  }
  void edit_json(const std::string& name, const std::function<void(json&)>& edit) {
    json j = json::parse(slurp(dir_ / name));
    edit(j);
    std::ofstream(dir_ / name, std::ios::trunc) << j.dump(1);
  }
  void expect_error(StatusCode code, const std::string& says) {
    auto ck = Checkpoint::open(dir_.path());
    ASSERT_FALSE(ck.ok()) << "expected: " << says;
    EXPECT_EQ(ck.status().code(), code) << ck.status().to_string();
    EXPECT_NE(ck.status().message().find(says), std::string::npos) << ck.status().message();
  }

  test::TempDir dir_;
  SynthReport report_;
};

TEST_P(DsparkCheckpoint, LoadsWithDrafterShardsLast) {
  auto ck = Checkpoint::open(dir_.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->tensor_count(), report_.tensors);
  EXPECT_EQ((*ck)->config().drafter_blocks(), 3);
  // addendum §A3.1: the mtp.* tensors fill the last shards, and those hold nothing else.
  const json index = json::parse(slurp(dir_ / "model.safetensors.index.json"));
  std::map<std::string, std::set<bool>> holds_mtp;   // shard -> {is an mtp.* tensor}
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it)
    holds_mtp[it.value().get<std::string>()].insert(it.key().rfind("mtp.", 0) == 0);
  ASSERT_EQ(holds_mtp.size(), report_.shards);
  ASSERT_GE(holds_mtp.size(), 5u);   // at least 2 main shards, then one per stage
  size_t k = 0;
  for (const auto& [shard, kinds] : holds_mtp) {   // shard names sort in file order
    const bool drafter_shard = k++ >= holds_mtp.size() - 3;
    EXPECT_EQ(kinds, std::set<bool>{drafter_shard}) << shard;
  }
  // Bound for the draft forward to come; no preview MTP block.
  const model::ModelWeights w = model::bind_weights(**ck);
  EXPECT_FALSE(w.has_mtp);
  ASSERT_TRUE(w.has_dspark);
  EXPECT_EQ(w.dspark.stages.size(), 3u);
  EXPECT_EQ(w.dspark.stages[2].layer, (*ck)->config().num_hidden_layers + 2);
  EXPECT_EQ(w.dspark.main_proj.cols, 3 * (*ck)->config().hidden_size);
  EXPECT_EQ(int64_t(w.dspark.confidence_proj.size()), (*ck)->config().hidden_size + (*ck)->config().dspark.markov_rank);
  EXPECT_EQ(w.dspark.markov_w1.rows, (*ck)->config().vocab_size);
}

// The main stack runs as the preview's does; the drafter is not used yet.
TEST_P(DsparkCheckpoint, MainStackGeneratesGreedily) {
  auto e = runtime::Engine::load(dir_.path(), {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  runtime::Engine& engine = **e;
  const int64_t V = engine.config().vocab_size;
  auto generate = [&] {
    auto seq = engine.new_sequence();
    std::vector<float> logits(size_t(V), 0);
    std::vector<int32_t> out;
    std::vector<int32_t> next = {0, 17, 300, 5};
    for (int i = 0; i < 12; ++i) {
      EXPECT_TRUE(engine.step(*seq, next, logits.data()).ok());
      const int32_t t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      out.push_back(t);
      next = {t};
    }
    return out;
  };
  const std::vector<int32_t> a = generate();
  EXPECT_EQ(a, generate());
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 1u);   // not stuck on one token
}

TEST_P(DsparkCheckpoint, MissingDrafterTensorIsNamed) {
  const std::string name = "mtp.2.markov_head.markov_w2.weight";
  std::string shard;
  uint64_t bytes = 0;
  edit_json("model.safetensors.index.json", [&](json& j) {
    shard = j["weight_map"][name].get<std::string>();
    j["weight_map"].erase(name);
  });
  std::vector<TensorSpec> specs;
  std::vector<std::vector<uint8_t>> data;
  {
    auto st = open_safetensors(dir_ / shard);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    for (const auto& t : st->header.tensors) {
      if (t.name == name) {
        bytes = t.nbytes();
        continue;
      }
      specs.push_back({t.name, t.dtype, t.shape});
      data.emplace_back(t.data, t.data + t.nbytes());
    }
  }
  ASSERT_TRUE(write_safetensors(dir_ / shard, specs, {{"format", "pt"}},
                                [&](size_t i, std::vector<uint8_t>& out) { out = data[i]; })
                  .ok());
  edit_json("model.safetensors.index.json",
            [&](json& j) { j["metadata"]["total_size"] = j["metadata"]["total_size"].get<uint64_t>() - bytes; });
  expect_error(StatusCode::not_found, "tensor '" + name + "': missing");
}

TEST_P(DsparkCheckpoint, WrongTargetLayersAreNamed) {
  edit_json("config.json", [](json& j) { j["dspark_target_layer_ids"] = {1, 3, 2}; });
  expect_error(StatusCode::invalid_argument, "'dspark_target_layer_ids' must be strictly increasing");
}

// addendum §A2.1: NS from compress_ratios must agree with inference/config.json and the index.
TEST_P(DsparkCheckpoint, InconsistentStageCountIsRefused) {
  fs::create_directories(dir_ / "inference");
  std::ofstream(dir_ / "inference/config.json") << R"({"n_layers": 4, "n_mtp_layers": 3})";
  ASSERT_TRUE(Checkpoint::open(dir_.path()).ok());
  std::ofstream(dir_ / "inference/config.json", std::ios::trunc) << R"({"n_layers": 4, "n_mtp_layers": 1})";
  expect_error(StatusCode::corrupt_data, "n_mtp_layers 1, but config.json has 3 DSpark stages");
  fs::remove_all(dir_ / "inference");
  edit_json("config.json", [](json& j) { j["compress_ratios"].push_back(0); });
  expect_error(StatusCode::corrupt_data, "the tensors have 3 distinct mtp.{s}. prefixes, but config.json has 4 DSpark stages");
}

INSTANTIATE_TEST_SUITE_P(Releases, DsparkCheckpoint, ::testing::Values(SynthPreset::tiny_0731, SynthPreset::tiny_0813),
                         [](const auto& info) { return info.param == SynthPreset::tiny_0731 ? "Tiny0731" : "Tiny0813"; });

}  // namespace
}  // namespace dsv4::eval

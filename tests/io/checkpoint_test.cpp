#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "test_paths.h"

namespace dsv4::io {

TEST(Checkpoint, OpensEverySharedFixture) {
  for (const char* name : {"tiny", "tiny-c"}) {
    auto ck = Checkpoint::open(test::fixture_dir(name) + "/checkpoint");
    ASSERT_TRUE(ck.ok()) << ck.status().to_string();
    EXPECT_EQ((*ck)->tensor_count(), 427u);
    EXPECT_EQ((*ck)->config().hidden_size, 256);
    EXPECT_EQ((*ck)->tensor("layers.1.attn.indexer.wq_b.weight").dtype, DType::fp8_e4m3);
    // FP4 experts: I8 [128, 128] in the header, fp4_e2m1 [128, 256] once loaded (spec §3.3).
    const TensorEntry& w1 = (*ck)->tensor("layers.0.ffn.experts.0.w1.weight");
    EXPECT_EQ(w1.dtype, DType::fp4_e2m1);
    EXPECT_EQ(w1.shape, (std::vector<int64_t>{128, 256}));
    EXPECT_EQ(w1.nbytes(), 128u * 128u);
  }
}

TEST(Checkpoint, OpensTheDemoModel) {
  auto ck = Checkpoint::open(test::demo_model_dir());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->config().num_hidden_layers, 8);
}

// Re-reading to get 2 MiB pages is for large shards only: a small model's page cache is left alone.
TEST(Checkpoint, PopulateRereadsNoSmallShard) {
  auto ck = Checkpoint::open(test::demo_model_dir());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  Result<uint64_t> reread = (*ck)->populate(true);
  ASSERT_TRUE(reread.ok()) << reread.status().to_string();
  EXPECT_EQ(*reread, 0u);
}

// --numa (issue #17): the chosen tensors move to memory bound to the node, byte for byte; the
// others stay in the mapping, and populating skips the copied ones.
TEST(Checkpoint, CopyToNodeKeepsTheBytesAndMovesOnlyTheChosenTensors) {
  const std::string dir = test::fixture_dir("tiny") + "/checkpoint";
  auto plain = Checkpoint::open(dir);
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(plain.ok() && ck.ok());
  auto not_expert = [](const std::string& name) { return name.find(".ffn.experts.") == std::string::npos; };
  Result<uint64_t> copied = (*ck)->copy_to_node(NodeCopy{0, not_expert});
  ASSERT_TRUE(copied.ok()) << copied.status().to_string();
  for (const char* name : {"embed.weight", "layers.1.attn.indexer.wq_b.weight", "layers.0.ffn.experts.0.w1.weight"}) {
    const TensorEntry& a = (*plain)->tensor(name);
    const TensorEntry& b = (*ck)->tensor(name);
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes()), 0) << name;
  }
  EXPECT_EQ(*copied, (*ck)->node_copy_bytes());
  EXPECT_GT(*copied, 0u);
  EXPECT_LT(*copied, (*ck)->total_bytes());
  Result<uint64_t> populated = (*ck)->populate_tensors([](const std::string&) { return true; });
  ASSERT_TRUE(populated.ok());
  EXPECT_LT(*populated, (*ck)->total_bytes() - *copied / 2);   // the experts (and what shares their pages)
  const std::optional<std::map<int, uint64_t>> nodes = (*ck)->resident_bytes_per_node();
  if (!nodes) GTEST_SKIP() << "no /proc/self/numa_maps";
  EXPECT_GE(nodes->at(0), *copied);
}

TEST(Checkpoint, MissingDirectoryIsNotFound) {
  auto ck = Checkpoint::open("/nonexistent/dsv4");
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), StatusCode::not_found);
}

}  // namespace dsv4::io

// ---- Corrupted copies of the tiny fixture: every defect gives a Status naming file and tensor ----

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "test_tmp_dir.h"

namespace dsv4::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary | std::ios::trunc) << text; }

// A writable copy of fixtures/tiny/checkpoint.
class CorruptCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& e : fs::directory_iterator(test::fixture_dir("tiny") + "/checkpoint")) {
      const fs::path to = fs::path(dir_.path()) / e.path().filename();
      fs::copy_file(e.path(), to);
      fs::permissions(to, fs::perms::owner_write, fs::perm_options::add);
    }
  }
  std::string path(const std::string& name) const { return dir_ / name; }

  // Rewrites a shard through the writer after `edit` changed its tensor list (specs + bytes).
  void rewrite_shard(const std::string& name,
                     const std::function<void(std::vector<TensorSpec>&, std::vector<std::vector<uint8_t>>&)>& edit) {
    std::vector<TensorSpec> specs;
    std::vector<std::vector<uint8_t>> data;
    {
      auto st = open_safetensors(path(name));
      ASSERT_TRUE(st.ok()) << st.status().to_string();
      for (const auto& t : st->header.tensors) {
        specs.push_back({t.name, t.dtype, t.shape});
        data.emplace_back(t.data, t.data + t.nbytes());
      }
    }
    edit(specs, data);
    ASSERT_TRUE(write_safetensors(path(name), specs, {{"format", "pt"}},
                                  [&](size_t i, std::vector<uint8_t>& out) { out = data[i]; })
                    .ok());
  }
  void edit_json(const std::string& name, const std::function<void(json&)>& edit) {
    json j = json::parse(slurp(path(name)));
    edit(j);
    spit(path(name), j.dump(1));
  }
  // Opens the copy, expects failure with `code` and every one of `parts` in the message.
  void expect_error(StatusCode code, std::initializer_list<std::string> parts) {
    auto ck = Checkpoint::open(dir_.path());
    ASSERT_FALSE(ck.ok()) << "expected an error";
    EXPECT_EQ(ck.status().code(), code) << ck.status().to_string();
    for (const auto& p : parts) EXPECT_NE(ck.status().message().find(p), std::string::npos) << ck.status().message();
  }
  // Rewrites a tensor's header entry in place (the header keeps its length: only digits and
  // dtype names of equal length are swapped), so the data section stays where it was.
  void patch_header(const std::string& name, const std::string& from, const std::string& to) {
    ASSERT_EQ(from.size(), to.size());
    std::string bytes = slurp(path(name));
    const size_t at = bytes.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bytes.replace(at, from.size(), to);
    spit(path(name), bytes);
  }

  test::TempDir dir_;
};

TEST_F(CorruptCheckpoint, TheUntouchedCopyOpens) {
  auto ck = Checkpoint::open(dir_.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
}

// A writer that does not pad the header to 8 bytes shifts every tensor off its alignment; such
// tensors are read through aligned copies holding the same bytes.
TEST_F(CorruptCheckpoint, MisalignedTensorsAreReadFromAlignedCopies) {
  const std::string bytes = slurp(path(kShard1));
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  std::string shifted = bytes.substr(0, 8 + header_len) + " " + bytes.substr(8 + header_len);
  for (int i = 0; i < 8; ++i) shifted[size_t(i)] = char(uint8_t((header_len + 1) >> (8 * i)));
  spit(path(kShard1), shifted);

  auto original = Checkpoint::open(test::fixture_dir("tiny") + "/checkpoint");
  auto ck = Checkpoint::open(dir_.path());
  ASSERT_TRUE(original.ok() && ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*original)->realigned_bytes(), 0u);
  uint64_t multi_byte = 0;
  auto st = open_safetensors(path(kShard1));
  ASSERT_TRUE(st.ok());
  for (const auto& e : st->header.tensors) {
    if (dtype_align(e.dtype) > 1) multi_byte += e.nbytes();
    const TensorEntry& t = (*ck)->tensor(e.name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_align(t.dtype), 0u) << e.name;
    EXPECT_EQ(0, std::memcmp(t.data, (*original)->tensor(e.name).data, t.nbytes())) << e.name;
  }
  EXPECT_GT(multi_byte, 0u);
  EXPECT_EQ((*ck)->realigned_bytes(), multi_byte);
}

TEST_F(CorruptCheckpoint, TruncatedShard) {
  const std::string bytes = slurp(path(kShard2));
  for (size_t cut : {size_t(4), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    spit(path(kShard2), bytes.substr(0, cut));
    expect_error(StatusCode::corrupt_data, {kShard2});
  }
  spit(path(kShard2), bytes.substr(0, bytes.size() - 1));
  expect_error(StatusCode::corrupt_data, {std::string(kShard2) + ": tensor '", "beyond the data section", "truncated"});
}

TEST_F(CorruptCheckpoint, FlippedHeaderByte) {
  std::string bytes = slurp(path(kShard1));
  bytes[8] = '[';   // the header's opening brace
  spit(path(kShard1), bytes);
  expect_error(StatusCode::corrupt_data, {std::string(kShard1) + ": header is not valid JSON"});
}

TEST_F(CorruptCheckpoint, MissingTensor) {
  rewrite_shard(kShard1, [](auto& specs, auto& data) {
    auto it = std::find_if(specs.begin(), specs.end(), [](const TensorSpec& t) { return t.name == "layers.0.attn.wkv.weight"; });
    data.erase(data.begin() + (it - specs.begin()));
    specs.erase(it);
  });
  // The index still names it: the index check fires first.
  expect_error(StatusCode::corrupt_data, {"tensor 'layers.0.attn.wkv.weight'", "absent from this shard"});
  edit_json("model.safetensors.index.json", [](json& j) {
    j["weight_map"].erase("layers.0.attn.wkv.weight");
    j["metadata"].erase("total_size");
  });
  expect_error(StatusCode::not_found, {"tensor 'layers.0.attn.wkv.weight': missing", "F8_E4M3 [128,256]"});
}

TEST_F(CorruptCheckpoint, ExtraUnknownTensor) {
  rewrite_shard(kShard2, [](auto& specs, auto& data) {
    specs.push_back({"layers.0.attn.bogus", DType::f32, {2}});
    data.emplace_back(8, 0);
  });
  expect_error(StatusCode::corrupt_data, {std::string(kShard2) + ": tensor 'layers.0.attn.bogus': not listed"});
  edit_json("model.safetensors.index.json", [](json& j) {
    j["weight_map"]["layers.0.attn.bogus"] = kShard2;
    j["metadata"]["total_size"] = j["metadata"]["total_size"].get<uint64_t>() + 8;
  });
  expect_error(StatusCode::corrupt_data, {std::string(kShard2) + ": tensor 'layers.0.attn.bogus': unknown"});
}

TEST_F(CorruptCheckpoint, WrongShape) {
  patch_header(kShard1, R"("layers.0.attn.wkv.weight":{"dtype":"F8_E4M3","shape":[128,256])",
               R"("layers.0.attn.wkv.weight":{"dtype":"F8_E4M3","shape":[256,128])");
  expect_error(StatusCode::corrupt_data,
               {std::string(kShard1) + ": tensor 'layers.0.attn.wkv.weight': shape [256,128], expected [128,256]"});
}

TEST_F(CorruptCheckpoint, WrongDtype) {
  patch_header(kShard1, R"("layers.0.attn_norm.weight":{"dtype":"BF16")", R"("layers.0.attn_norm.weight":{"dtype":"F16 ")");
  expect_error(StatusCode::unsupported, {"tensor 'layers.0.attn_norm.weight': unknown dtype 'F16 '"});
  patch_header(kShard1, R"("layers.0.attn_norm.weight":{"dtype":"F16 ")", R"("layers.0.attn_norm.weight":{"dtype":"F16" )");
  expect_error(StatusCode::corrupt_data,
               {std::string(kShard1) + ": tensor 'layers.0.attn_norm.weight': dtype F16, expected BF16"});
}

// FP4 experts are checked against their header form, I8 [rows, cols/2], and reported in it.
TEST_F(CorruptCheckpoint, Fp4ExpertIsCheckedAsI8) {
  patch_header(kShard1, R"("layers.0.ffn.experts.0.w1.weight":{"dtype":"I8","shape":[128,128])",
               R"("layers.0.ffn.experts.0.w1.weight":{"dtype":"U8","shape":[128,128])");
  expect_error(StatusCode::corrupt_data,
               {std::string(kShard1) + ": tensor 'layers.0.ffn.experts.0.w1.weight': dtype U8, expected I8"});
  patch_header(kShard1, R"("layers.0.ffn.experts.0.w1.weight":{"dtype":"U8","shape":[128,128])",
               R"("layers.0.ffn.experts.0.w1.weight":{"dtype":"I8","shape":[256, 64])");
  expect_error(StatusCode::corrupt_data,
               {std::string(kShard1) + ": tensor 'layers.0.ffn.experts.0.w1.weight': shape [256,64], expected [128,128]"});
}

TEST_F(CorruptCheckpoint, IndexNamesAMissingShard) {
  edit_json("model.safetensors.index.json", [](json& j) { j["weight_map"]["norm.weight"] = "model-00003-of-00003.safetensors"; });
  expect_error(StatusCode::not_found,
               {"model-00003-of-00003.safetensors: shard named in model.safetensors.index.json", "'norm.weight'"});
  fs::remove(path(kShard2));
  edit_json("model.safetensors.index.json", [](json& j) { j["weight_map"]["norm.weight"] = kShard1; });
  expect_error(StatusCode::not_found, {kShard2, "does not exist"});
}

TEST_F(CorruptCheckpoint, IndexNamesATensorAbsentFromItsShard) {
  edit_json("model.safetensors.index.json", [](json& j) { j["weight_map"]["layers.9.attn.wkv.weight"] = kShard2; });
  expect_error(StatusCode::corrupt_data, {std::string(kShard2) + ": tensor 'layers.9.attn.wkv.weight': listed in"});
}

TEST_F(CorruptCheckpoint, IndexPlacesATensorInTheWrongShard) {
  std::string in_shard1;
  edit_json("model.safetensors.index.json", [&](json& j) {
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
      if (it.value() == kShard1) { in_shard1 = it.key(); it.value() = kShard2; break; }
  });
  expect_error(StatusCode::corrupt_data, {"tensor '" + in_shard1 + "': model.safetensors.index.json places it in " + kShard2});
}

TEST_F(CorruptCheckpoint, IndexTotalSizeMismatch) {
  edit_json("model.safetensors.index.json", [](json& j) { j["metadata"]["total_size"] = 12345; });
  expect_error(StatusCode::corrupt_data, {"metadata.total_size 12345", "7200682"});
  edit_json("model.safetensors.index.json", [](json& j) { j["metadata"]["total_size"] = "big"; });
  expect_error(StatusCode::corrupt_data, {"metadata.total_size must be"});
}

TEST_F(CorruptCheckpoint, MalformedIndex) {
  spit(path("model.safetensors.index.json"), "{\"weight_map\": ");
  expect_error(StatusCode::corrupt_data, {"model.safetensors.index.json: not valid JSON"});
  spit(path("model.safetensors.index.json"), R"({"weight_map": {"norm.weight": "../x.safetensors"}})");
  expect_error(StatusCode::corrupt_data, {"must be a plain file name"});
  spit(path("model.safetensors.index.json"), R"({"weight_map": {"norm.weight": 3}})");
  expect_error(StatusCode::corrupt_data, {"weight_map values must be file names"});
}

TEST_F(CorruptCheckpoint, WithoutIndexTheShardsAreFoundByName) {
  fs::remove(path("model.safetensors.index.json"));
  auto ck = Checkpoint::open(dir_.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  fs::remove(path(kShard1));
  fs::remove(path(kShard2));
  expect_error(StatusCode::not_found, {"no model.safetensors.index.json and no *.safetensors"});
}

// A process that wants only some tensors (an expert-parallel rank, issue #17) opens only their
// shards: the others may be absent, the inventory is still checked whole against the index.
TEST_F(CorruptCheckpoint, AFilterOpensOnlyTheShardsItNeeds) {
  const json index = json::parse(slurp(path("model.safetensors.index.json")));
  std::set<std::string> in_shard1, in_shard2;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it)
    (it.value() == kShard2 ? in_shard2 : in_shard1).insert(it.key());
  const TensorFilter wanted = [&](const std::string& name) { return in_shard1.count(name) > 0; };
  Result<std::set<std::string>> unneeded = unneeded_shards(dir_.path(), wanted);
  ASSERT_TRUE(unneeded.ok()) << unneeded.status().to_string();
  EXPECT_EQ(*unneeded, std::set<std::string>{kShard2});
  fs::remove(path(kShard2));
  auto ck = Checkpoint::open(dir_.path(), wanted);
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->shard_paths().size(), 1u);
  EXPECT_EQ((*ck)->tensor_count(), 427u - in_shard2.size());
  EXPECT_EQ((*ck)->find(*in_shard2.begin()), nullptr);
  EXPECT_NE((*ck)->find("embed.weight"), nullptr);
  expect_error(StatusCode::not_found, {kShard2, "does not exist"});   // without the filter
  // The unopened shard's part of the inventory is checked by name, from the index.
  edit_json("model.safetensors.index.json", [](json& j) { j["weight_map"]["layers.0.ffn.bogus"] = kShard2; });
  ck = Checkpoint::open(dir_.path(), wanted);
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.status().message().find(std::string(kShard2) + ": tensor 'layers.0.ffn.bogus': unknown"),
            std::string::npos)
      << ck.status().to_string();
  edit_json("model.safetensors.index.json", [&](json& j) {
    j["weight_map"].erase("layers.0.ffn.bogus");
    j["weight_map"].erase(*in_shard2.begin());
  });
  ck = Checkpoint::open(dir_.path(), wanted);
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.status().message().find("tensor '" + *in_shard2.begin() + "': missing"), std::string::npos)
      << ck.status().to_string();
  // Without an index there is no knowing a shard's tensors without opening it: all are needed.
  fs::remove(path("model.safetensors.index.json"));
  EXPECT_TRUE(unneeded_shards(dir_.path(), wanted)->empty());
}

TEST_F(CorruptCheckpoint, MalformedConfig) {
  const json good = json::parse(slurp(path("config.json")));
  struct Case {
    std::function<void(json&)> edit;
    StatusCode code;
    std::string part;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["hidden_size"] = "256"; }, StatusCode::invalid_argument, "key 'hidden_size' must be an integer"},
      {[](json& j) { j["hidden_size"] = 256.5; }, StatusCode::invalid_argument, "key 'hidden_size' must be an integer"},
      {[](json& j) { j.erase("vocab_size"); }, StatusCode::invalid_argument, "missing key 'vocab_size'"},
      {[](json& j) { j["rope_theta"] = "x"; }, StatusCode::invalid_argument, "key 'rope_theta' must be a number"},
      {[](json& j) { j["compress_ratios"][1] = 8; }, StatusCode::unsupported, "compress_ratios entry 8"},
      {[](json& j) { j["compress_ratios"].erase(0); }, StatusCode::invalid_argument, "compress_ratios has 4 entries"},
      {[](json& j) { j["compress_ratios"] = "0,4"; }, StatusCode::invalid_argument, "missing array 'compress_ratios'"},
      {[](json& j) { j["num_hidden_layers"] = -4; }, StatusCode::invalid_argument, "'num_hidden_layers' = -4 is out of range"},
      {[](json& j) { j["hidden_size"] = 200; }, StatusCode::unsupported, "hidden_size must be a multiple of 128"},
      {[](json& j) { j["num_experts_per_tok"] = 9; }, StatusCode::invalid_argument, "num_experts_per_tok"},
      {[](json& j) { j["model_type"] = "deepseek_v3"; }, StatusCode::unsupported, "model_type 'deepseek_v3'"},
      {[](json& j) { j["expert_dtype"] = "int4"; }, StatusCode::unsupported, "expert_dtype 'int4'"},
      {[](json& j) { j["scoring_func"] = "sigmoid"; }, StatusCode::unsupported, "scoring_func"},
      {[](json& j) { j.erase("rope_scaling"); }, StatusCode::invalid_argument, "missing object 'rope_scaling'"},
      {[](json& j) { j["rope_scaling"]["factor"] = nullptr; }, StatusCode::invalid_argument, "missing key 'factor'"},
      {[](json& j) { j["rms_norm_eps"] = -1; }, StatusCode::invalid_argument, "rms_norm_eps"},
      {[](json& j) { j["n_routed_experts"] = 65536; j["num_hidden_layers"] = 1000; }, StatusCode::unsupported,
       "implausibly large"},
      {[](json& j) { j = json::array(); }, StatusCode::invalid_argument, "config is not a JSON object"},
  };
  for (const auto& c : cases) {
    json j = good;
    c.edit(j);
    spit(path("config.json"), j.dump());
    auto ck = Checkpoint::open(dir_.path());
    ASSERT_FALSE(ck.ok()) << c.part;
    EXPECT_EQ(ck.status().code(), c.code) << ck.status().to_string();
    EXPECT_EQ(ck.status().message().rfind(path("config.json") + ": ", 0), 0u) << ck.status().message();
    EXPECT_NE(ck.status().message().find(c.part), std::string::npos) << ck.status().message();
  }
  spit(path("config.json"), "{\"vocab_size\": 10,");
  expect_error(StatusCode::invalid_argument, {"config.json: not valid JSON"});
  fs::remove(path("config.json"));
  expect_error(StatusCode::not_found, {"config.json: cannot open"});
}

TEST(Config, RejectsAnInventoryTooLargeToList) {
  std::string text = slurp(test::fixture_dir("tiny") + "/checkpoint/config.json");
  json j = json::parse(text);
  j["num_hidden_layers"] = 1000;
  j["n_routed_experts"] = 65536;
  j["compress_ratios"] = std::vector<int>(1001, 0);
  auto c = parse_config(j.dump(), "c.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("implausibly large"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace dsv4::io

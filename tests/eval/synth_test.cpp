#include "eval/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "core/dtype.h"
#include "io/checkpoint.h"
#include "io/integrity.h"
#include "io/inventory.h"
#include "quiet_synth_options.h"
#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::eval {
namespace {

namespace fs = std::filesystem;
using namespace io;   // synth's output is checked with the io layer's own loader and verifier

using test::slurp;

using test::quiet_synth_options;

TEST(Synth, TinyConfigEqualsTheFixtureConfig) {
  auto text = synth_config_json(quiet_synth_options(SynthPreset::tiny));
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const auto ours = nlohmann::json::parse(*text);
  const auto fixture = nlohmann::json::parse(slurp(test::fixture_dir("tiny") + "/checkpoint/config.json"));
  EXPECT_EQ(ours, fixture);
}

TEST(Synth, LayerOverrideKeepsTheScheduleAndMtpEntry) {
  SynthOptions o = quiet_synth_options(SynthPreset::flash);
  o.layers = 5;
  o.experts = 4;
  auto text = synth_config_json(o);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  auto c = parse_config(*text, "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->compress_ratios, (std::vector<int>{0, 0, 4, 128, 4, 0}));   // spec §2.3 Flash
  EXPECT_EQ(c->num_hash_layers, 3);
  EXPECT_EQ(c->n_routed_experts, 4);
  EXPECT_EQ(c->num_experts_per_tok, 4);
  EXPECT_EQ(c->hidden_size, 4096);

  o = quiet_synth_options(SynthPreset::pro);
  o.layers = 4;
  c = parse_config(synth_config_json(o).value(), "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->compress_ratios, (std::vector<int>{128, 128, 4, 128, 0}));   // spec §2.3 Pro
  EXPECT_EQ(c->hidden_size, 7168);
  EXPECT_EQ(c->n_routed_experts, 384);

  o = quiet_synth_options(SynthPreset::flash);
  o.layers = 43;
  c = parse_config(synth_config_json(o).value(), "x");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->compress_ratios.size(), 44u);
  EXPECT_EQ(c->compress_ratios[42], 4);
  EXPECT_EQ(c->compress_ratios[41], 128);
  EXPECT_EQ(c->compress_ratios[43], 0);
}

TEST(Synth, ConfigEditsApplyLastAndAreChecked) {
  SynthOptions o = quiet_synth_options(SynthPreset::tiny);
  o.layers = 2;
  o.set = {"head_dim=512", "rope_scaling.factor=8", "expert_dtype=fp8", "compress_ratios=[4,4,0]", "hc_eps=1e-5"};
  auto text = synth_config_json(o);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["rope_scaling"]["factor"], 8);
  EXPECT_EQ(j["expert_dtype"], "fp8");   // not JSON: taken as a string
  auto c = parse_config(*text, "x");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->head_dim, 512);
  EXPECT_EQ(c->rope_factor, 8.0);
  EXPECT_FALSE(c->experts_fp4);
  EXPECT_EQ(c->compress_ratios, (std::vector<int>{4, 4, 0}));
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->hc_eps, 1e-5);

  // Each bad edit is refused with a message that names it.
  struct Bad { const char* edit; const char* says; };
  for (const Bad& b : {Bad{"head_dims=512", "no key 'head_dims'"}, Bad{"rope_scaling.fator=8", "no key 'rope_scaling.fator'"},
                       Bad{"head_dim.x=1", "no key 'head_dim.x'"}, Bad{"=4", "not KEY=VALUE"}, Bad{"head_dim", "not KEY=VALUE"},
                       Bad{"hidden_size=200", "multiple of 128"}, Bad{"head_dim=big", "must be an integer"},
                       Bad{"compress_ratios=[4,0]", "compress_ratios has 2 entries"}}) {
    o.set = {b.edit};
    auto r = synth_config_json(o);
    ASSERT_FALSE(r.ok()) << b.edit;
    EXPECT_NE(r.status().to_string().find(b.says), std::string::npos) << b.edit << ": " << r.status().to_string();
  }
}

TEST(Synth, FullFlashInventoryMatchesTheReleasedByteTotal) {
  // spec §1 / §3.4: 69,187 tensors, 159,609,485,896 bytes (index metadata.total_size).
  auto c = parse_config(synth_config_json(quiet_synth_options(SynthPreset::flash)).value(), "flash");
  ASSERT_TRUE(c.ok());
  uint64_t total = 0;
  const auto tensors = expected_tensors(*c);
  for (const auto& t : tensors) total += t.nbytes();
  EXPECT_EQ(tensors.size(), 69187u);
  EXPECT_EQ(total, 159609485896ull);
}

TEST(Synth, TinyCheckpointsLoadForSeveralShapes) {
  struct Case { uint64_t seed; int64_t layers, experts, vocab; };
  for (const Case& k : {Case{1, 0, 0, 0}, Case{2, 1, 3, 0}, Case{3, 2, 8, 300}, Case{4, 6, 16, 0}}) {
    test::TempDir tmp;
    SynthOptions o = quiet_synth_options(SynthPreset::tiny);
    o.seed = k.seed;
    o.layers = k.layers;
    o.experts = k.experts;
    o.vocab = k.vocab;
    SynthReport rep;
    ASSERT_TRUE(synth_checkpoint(o, tmp.path(), &rep).ok());
    auto ck = Checkpoint::open(tmp.path());
    ASSERT_TRUE(ck.ok()) << "seed " << k.seed << ": " << ck.status().to_string();
    EXPECT_EQ((*ck)->tensor_count(), rep.tensors);
    EXPECT_EQ((*ck)->total_bytes(), rep.bytes);
    EXPECT_EQ((*ck)->realigned_bytes(), 0u);   // laid out like the safetensors library's files
    EXPECT_GE(rep.shards, 2u);
    if (k.layers) {
      EXPECT_EQ((*ck)->config().num_hidden_layers, k.layers);
    }
    if (k.experts) {
      EXPECT_EQ((*ck)->config().n_routed_experts, k.experts);
    }
    const auto index = nlohmann::json::parse(slurp(tmp / "model.safetensors.index.json"));
    EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), rep.bytes);
    EXPECT_TRUE(fs::exists(tmp / "generation_config.json"));
    VerifyOptions vo;
    vo.use_cache = false;
    vo.progress = false;
    EXPECT_TRUE(verify_model_dir(tmp.path(), vo).ok());   // SHA256SUMS written while streaming
  }
}

TEST(Synth, FlashDimensionsLoad) {
  test::TempDir tmp;
  SynthOptions o = quiet_synth_options(SynthPreset::flash);
  o.layers = 1;
  o.experts = 8;
  o.vocab = 512;   // the 129280-row embedding and head alone are 2 GB; dimensions otherwise real
  ASSERT_TRUE(synth_checkpoint(o, tmp.path()).ok());
  auto ck = Checkpoint::open(tmp.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->tensor("layers.0.attn.wq_b.weight").shape, (std::vector<int64_t>{32768, 1024}));
  // Stored I8 [4096, 1024] (spec §3.4), loaded as what it holds.
  const TensorEntry& w2 = (*ck)->tensor("mtp.0.ffn.experts.7.w2.weight");
  EXPECT_EQ(w2.dtype, DType::fp4_e2m1);
  EXPECT_EQ(w2.shape, (std::vector<int64_t>{4096, 2048}));
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  test::TempDir a, b, c;
  SynthOptions o = quiet_synth_options(SynthPreset::tiny);
  o.seed = 7;
  ASSERT_TRUE(synth_checkpoint(o, a.path()).ok());
  ASSERT_TRUE(synth_checkpoint(o, b.path()).ok());
  o.seed = 8;
  ASSERT_TRUE(synth_checkpoint(o, c.path()).ok());
  for (const char* f : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
    EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
    EXPECT_NE(slurp(a / f), slurp(c / f)) << f;
  }
}

TEST(Synth, RefusesToMixWithAnExistingCheckpoint) {
  test::TempDir tmp;
  SynthOptions o = quiet_synth_options(SynthPreset::tiny);
  ASSERT_TRUE(synth_checkpoint(o, tmp.path()).ok());
  Status s = synth_checkpoint(o, tmp.path());
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("--force"), std::string::npos) << s.message();
  o.overwrite = true;
  EXPECT_TRUE(synth_checkpoint(o, tmp.path()).ok());
}

TEST(Synth, CopiesTheTokenizerWhenThereIsOne) {
  test::TempDir tok, out, out2;
  std::ofstream(tok / "tokenizer.json") << R"({"model":{}})";
  std::ofstream(tok / "tokenizer_config.json") << R"({"add_bos_token":false})";
  SynthOptions o = quiet_synth_options(SynthPreset::tiny);
  o.tokenizer_dir = tok.path();
  SynthReport rep;
  ASSERT_TRUE(synth_checkpoint(o, out.path(), &rep).ok());
  EXPECT_TRUE(rep.tokenizer_copied);
  EXPECT_EQ(slurp(out / "tokenizer_config.json"), R"({"add_bos_token":false})");
  VerifyOptions vo;
  vo.use_cache = false;
  vo.progress = false;
  EXPECT_TRUE(verify_model_dir(out.path(), vo).ok());   // listed in SHA256SUMS too
  // Only one of the two files: skipped (with a note), not half-copied.
  fs::remove(tok / "tokenizer.json");
  ASSERT_TRUE(synth_checkpoint(o, out2.path(), &rep).ok());
  EXPECT_FALSE(rep.tokenizer_copied);
  EXPECT_FALSE(fs::exists(out2 / "tokenizer_config.json"));
}

TEST(Synth, FillDoesNotDependOnHowATensorIsCut) {
  const TensorSpec big{"x.weight", DType::fp8_e4m3, {1024, 3 * 1024 + 7}};   // > 3 blocks, ragged end
  SynthRecipe r;
  r.kind = SynthRecipe::Kind::fp8_normal;
  r.seed = 42;
  std::vector<uint8_t> whole(big.nbytes()), pieces(big.nbytes());
  synth_fill(r, big, 0, whole.data(), whole.size());
  for (uint64_t off = 0; off < big.nbytes(); off += kSynthBlock)
    synth_fill(r, big, off, pieces.data() + off, size_t(std::min<uint64_t>(kSynthBlock, big.nbytes() - off)));
  EXPECT_EQ(whole, pieces);
  // Unaligned, uneven pieces (as the shard writer cuts them at buffer boundaries).
  std::fill(pieces.begin(), pieces.end(), 0);
  uint64_t off = 0;
  for (uint64_t step : {uint64_t(1), uint64_t(777), kSynthBlock + 5, uint64_t(3), kSynthBlock * 2}) {
    synth_fill(r, big, off, pieces.data() + off, size_t(step));
    off += step;
  }
  synth_fill(r, big, off, pieces.data() + off, size_t(big.nbytes() - off));
  EXPECT_EQ(whole, pieces);
  // The hash-routing table is row-addressed: same check with rows cut in the middle.
  const TensorSpec ids{"g.tid2eid", DType::i64, {50000, 6}};
  SynthRecipe ri;
  ri.kind = SynthRecipe::Kind::expert_ids;
  ri.n_experts = 300;
  ri.seed = 5;
  std::vector<uint8_t> w2(ids.nbytes()), p2(ids.nbytes());
  synth_fill(ri, ids, 0, w2.data(), w2.size());
  synth_fill(ri, ids, 0, p2.data(), 100001);
  synth_fill(ri, ids, 100001, p2.data() + 100001, p2.size() - 100001);
  EXPECT_EQ(w2, p2);
}

// Decodes every tensor of a tiny synth checkpoint and checks the magnitudes the forward pass
// relies on: no NaN/inf, FP8 codes far from saturation and (as in real checkpoints, whose blocks
// are quantised to their maximum) rarely subnormal, dequantised weights ~ 1/sqrt(fan_in),
// norms ~ 1, tid2eid rows distinct and in range.
TEST(Synth, WeightsAreNumericallySane) {
  test::TempDir tmp;
  SynthOptions o = quiet_synth_options(SynthPreset::tiny);
  o.seed = 11;
  ASSERT_TRUE(synth_checkpoint(o, tmp.path()).ok());
  auto ck = Checkpoint::open(tmp.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  const auto& c = (*ck)->config();
  for (const auto& spec : expected_tensors(c)) {
    const TensorEntry& t = (*ck)->tensor(spec.name);
    const int64_t n = t.numel();
    double sum2 = 0;
    int64_t subnormal = 0;
    for (int64_t i = 0; i < n; ++i) {
      float v = 0;
      switch (t.dtype) {
        case DType::fp8_e4m3:
          v = e4m3_to_f32(t.data[i]);
          ASSERT_LE(std::fabs(v), 256.0f) << spec.name;
          subnormal += (t.data[i] & 0x78) == 0 && (t.data[i] & 0x07) != 0;
          break;
        case DType::fp8_e8m0: v = e8m0_to_f32(t.data[i]); ASSERT_LT(v, 1.0f) << spec.name; break;
        case DType::bf16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); v = bf16_to_f32(h); break; }
        case DType::f32: std::memcpy(&v, t.data + 4 * i, 4); break;
        case DType::fp4_e2m1: v = e2m1_to_f32(uint8_t(t.data[i / 2] >> (4 * (i % 2)))); break;
        case DType::i64: { int64_t e; std::memcpy(&e, t.data + 8 * i, 8); ASSERT_TRUE(e >= 0 && e < c.n_routed_experts); v = 0; break; }
        default: FAIL() << spec.name;
      }
      ASSERT_TRUE(std::isfinite(v)) << spec.name << " element " << i;
      sum2 += double(v) * v;
    }
    const double rms = std::sqrt(sum2 / double(n));
    const std::string& name = spec.name;
    if (t.dtype == DType::fp8_e4m3) {
      EXPECT_NEAR(rms, 64.0, 64.0 * 0.15) << name;
      EXPECT_LT(double(subnormal), 1e-3 * double(n)) << name;
      // Block scale x code rms ~ 1/sqrt(fan_in) (within a factor sqrt(2) from the rounding of log2).
      const std::string base = name.substr(0, name.size() - 7);
      const double s = e8m0_to_f32((*ck)->tensor(base + ".scale").data[0]);
      const double target = 1.0 / std::sqrt(double(t.shape[1]));
      EXPECT_GT(s * rms, target / 1.5) << name;
      EXPECT_LT(s * rms, target * 1.5) << name;
    }
    if (name.size() > 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0) {
      EXPECT_NEAR(rms, 1.0, 0.05) << name;
    }
    if (name.find("attn_sink") != std::string::npos) {
      EXPECT_LT(rms, 3.0) << name;
    }
    if (name.find("gate.bias") != std::string::npos) {
      EXPECT_LT(rms, 0.05) << name;
    }
    if (t.dtype == DType::i64) {
      const int64_t K = t.shape[1];
      for (int64_t r = 0; r < t.shape[0]; ++r) {
        std::set<int64_t> ids;
        for (int64_t k = 0; k < K; ++k) { int64_t e; std::memcpy(&e, t.data + 8 * (r * K + k), 8); ids.insert(e); }
        ASSERT_EQ(int64_t(ids.size()), K) << name << " row " << r;
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::eval

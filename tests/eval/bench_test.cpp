#include "eval/bench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "eval/quiet_synth_options.h"
#include "io/checkpoint.h"
#include "io/inventory.h"
#include "io/safetensors.h"
#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::eval {

namespace {

std::string tiny_dir() { return test::fixture_dir("tiny") + "/checkpoint"; }

// Bytes per decoded token counted the other way round from weight_traffic.cpp: every tensor in
// the shard headers, minus what one token does not read (the MTP block, all but one row of the
// embedding and of each hash table, the routed experts with id >= K; experts are equal in size,
// so ids [0, K) stand for any K of them).
uint64_t bytes_per_token_by_subtraction(const io::Checkpoint& ck) {
  const io::ModelConfig& c = ck.config();
  const uint64_t V = uint64_t(c.vocab_size);
  uint64_t total = 0, skipped = 0;
  for (const std::string& path : ck.shard_paths()) {
    auto f = io::open_safetensors(path);
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    if (!f.ok()) return 0;
    for (const io::TensorEntry& t : f->header.tensors) {
      const uint64_t b = t.nbytes();
      total += b;
      const std::string& n = t.name;
      const size_t e = n.find(".experts.");
      if (n.rfind("mtp.", 0) == 0) skipped += b;
      else if (n == "embed.weight" || n.find("tid2eid") != std::string::npos) skipped += b - b / V;
      else if (e != std::string::npos && std::stoll(n.substr(e + 9)) >= c.num_experts_per_tok) skipped += b;
    }
  }
  return total - skipped;
}

BenchOptions tiny_options() {
  BenchOptions o;
  o.model_dir = tiny_dir();
  o.prefill_lengths = {8, 33};
  o.decode_contexts = {0, 256};   // 256 = 2 HCA windows, so state growth is close to the §8 rate
  o.decode_tokens = 3;
  o.repetitions = 2;
  return o;
}

void expect_positive_finite(const nlohmann::ordered_json& j, const char* key) {
  ASSERT_TRUE(j.contains(key)) << key;
  ASSERT_TRUE(j[key].is_number()) << key;
  const double v = j[key].get<double>();
  EXPECT_TRUE(std::isfinite(v) && v > 0) << key << " = " << v;
}

}  // namespace

TEST(Bench, WeightBytesMatchAnIndependentCount) {
  auto ck = io::Checkpoint::open(tiny_dir());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  const WeightTraffic w = weight_bytes_per_token(**ck);
  const uint64_t expected = bytes_per_token_by_subtraction(**ck);
  ASSERT_GT(expected, 0u);
  EXPECT_EQ(w.total(), expected);
  EXPECT_GT(w.attention, 0u);
  EXPECT_GT(w.experts, 0u);
  EXPECT_GT(w.shared, 0u);
  // head.weight is read whole: at least V x D bf16.
  const auto& c = (*ck)->config();
  EXPECT_GE(w.head, uint64_t(c.vocab_size * c.hidden_size * 2));
  EXPECT_LT(w.total(), (*ck)->total_bytes());
}

// V4.1 (tiny-v41 synthetic): an Engram layer reads one row of its table per hash column (v4.1
// §5.3) and its projections, never the table whole; the vision tower is not read for text.
TEST(Bench, V41EngramReadsOneRowPerColumn) {
  test::TempDir dir;
  ASSERT_TRUE(eval::synth_checkpoint(test::quiet_synth_options(eval::SynthPreset::tiny_v41), dir.path()).ok());
  auto ck = io::Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  const io::ModelConfig& c = (*ck)->config();
  const io::V41EngramConfig& e = c.v41.engram;
  ASSERT_FALSE(e.layer_ids.empty());
  uint64_t expected = 0, tables = 0, rows = 0;
  for (int64_t l : e.layer_ids) {
    const std::string p = "layers." + std::to_string(l) + ".engram.";
    for (const char* t : {"embed.weight", "embed.scale"}) {
      const io::TensorEntry* x = (*ck)->find(p + t);
      ASSERT_NE(x, nullptr) << p + t;
      tables += x->nbytes();
      rows += x->nbytes() / uint64_t(x->shape[0]) * uint64_t(e.columns());
    }
    for (const char* t : {"wkv.weight", "wkv.scale", "q_weight", "k_weight"}) {
      const io::TensorEntry* x = (*ck)->find(p + t);
      ASSERT_NE(x, nullptr) << p + t;
      expected += x->nbytes();
    }
  }
  const WeightTraffic w = weight_bytes_per_token(**ck);
  EXPECT_EQ(w.engram, rows + expected);
  EXPECT_LT(rows, tables);
  uint64_t vision = 0;
  for (const io::TensorSpec& t : io::expected_tensors(c))
    if (t.name.rfind("vision.", 0) == 0) vision += t.nbytes();
  ASSERT_GT(vision, 0u);
  EXPECT_LT(w.total(), (*ck)->total_bytes() - vision - tables);
}

TEST(Bench, ReportHasEveryFigureOnTheTinyFixture) {
  auto r = run_bench(tiny_options());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto j = bench_json(*r);
  expect_positive_finite(j, "load_s");
  expect_positive_finite(j, "weight_bytes_per_token");
  expect_positive_finite(j, "measured_bw_GBps");
  expect_positive_finite(j, "decode_fraction_of_bound");
  ASSERT_TRUE(j.contains("kernels"));
  EXPECT_NE(j["kernels"].get<std::string>().find(", fp8 "), std::string::npos) << j["kernels"];

  ASSERT_TRUE(j["prefill"].is_array());
  ASSERT_EQ(j["prefill"].size(), 2u);
  EXPECT_EQ(j["prefill"][1]["tokens"].get<int64_t>(), 33);
  for (const auto& p : j["prefill"]) expect_positive_finite(p, "tok_s");
  ASSERT_TRUE(j["decode"].is_array());
  ASSERT_EQ(j["decode"].size(), 2u);
  EXPECT_EQ(j["decode"][0]["context"].get<int64_t>(), 0);
  EXPECT_EQ(j["decode"][1]["context"].get<int64_t>(), 256);
  for (const auto& d : j["decode"]) expect_positive_finite(d, "tok_s");

  // The breakdown: each timed part ran, and the parts fit inside the measured steps.
  for (const DecodeFigure& d : r->decode) {
    EXPECT_GT(d.attention_ms, 0.0);
    EXPECT_GT(d.ffn_ms, 0.0);
    EXPECT_GT(d.head_ms, 0.0);
    EXPECT_GE(d.other_ms, 0.0);
    const double step_ms = 1e3 / d.mean_tok_s;
    EXPECT_NEAR(d.attention_ms + d.ffn_ms + d.head_ms + d.other_ms, step_ms, 1e-6 * step_ms);
    EXPECT_LT(d.attention_ms + d.ffn_ms + d.head_ms, step_ms);
  }
  ASSERT_TRUE(j["decode"][0].contains("ms_per_token"));
  expect_positive_finite(j["decode"][0]["ms_per_token"], "attention");
  expect_positive_finite(j["decode"][0]["ms_per_token"], "ffn");
  expect_positive_finite(j["decode"][0]["ms_per_token"], "head");
  EXPECT_NE(bench_table(*r).find("decode step by part at context 0"), std::string::npos);

  auto ck = io::Checkpoint::open(tiny_dir());
  ASSERT_TRUE(ck.ok());
  EXPECT_EQ(j["weight_bytes_per_token"].get<uint64_t>(), bytes_per_token_by_subtraction(**ck));

  // The definition, at the shortest context.
  const double expect_fraction = r->decode[0].tok_s * double(r->weights.total()) / (r->measured_bw_GBps * 1e9);
  EXPECT_NEAR(r->decode_fraction_of_bound, expect_fraction, 1e-9 * expect_fraction);

  const auto& mem = j["memory"];
  expect_positive_finite(mem, "rss_peak_bytes");
  // The weights were populated at load: mapped file pages cover at least the checkpoint's tensors.
  expect_positive_finite(mem, "rss_anon_end_bytes");
  EXPECT_GE(mem["rss_file_end_bytes"].get<uint64_t>(), (*ck)->total_bytes());
  expect_positive_finite(mem, "state_bytes_per_token");
  EXPECT_EQ(mem["state_tokens"].get<int64_t>(), 256 + 3);
  // spec §8 for this config (2 CSA, 1 HCA layer): 2·(128·2/4 + 64·2/4) + 128·2/128 = 194 B/token.
  EXPECT_DOUBLE_EQ(r->spec_state_bytes_per_token, 194.0);
  // At 259 tokens the stored entries are floor(259/4) = 64 per CSA layer and 2 HCA entries:
  // 2·64·(256 + 128) + 2·256 = 49,664 B, i.e. 191.8 B/token.
  EXPECT_NEAR(r->state_bytes_per_token, 49664.0 / 259.0, 1e-9);
}

TEST(Bench, SyntheticContextIsLabelledAndDecodes) {
  BenchOptions o = tiny_options();
  o.prefill_lengths = {8};
  o.decode_contexts = {0, 4096};   // far beyond what the test could prefill quickly
  o.synthetic_context = true;
  o.measure_bandwidth = false;
  auto r = run_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto j = bench_json(*r);
  EXPECT_TRUE(j["synthetic_context"].get<bool>());
  EXPECT_EQ(j["decode"][0]["fill"].get<std::string>(), "none");
  EXPECT_EQ(j["decode"][1]["fill"].get<std::string>(), "synthetic");
  EXPECT_EQ(j["decode"][1]["context"].get<int64_t>(), 4096);
  expect_positive_finite(j["decode"][1], "tok_s");
  EXPECT_NE(bench_table(*r).find("SYNTHETIC"), std::string::npos);
  // The synthetic state has the real shapes: state growth at the spec §8 rate.
  EXPECT_NEAR(r->state_bytes_per_token, r->spec_state_bytes_per_token, 0.02 * r->spec_state_bytes_per_token);
}

TEST(Bench, RejectsBadOptions) {
  BenchOptions o = tiny_options();
  o.decode_tokens = 0;
  EXPECT_FALSE(run_bench(o).ok());
  o = tiny_options();
  o.model_dir = test::fixture_dir("tiny") + "/no-such-dir";
  EXPECT_FALSE(run_bench(o).ok());
}

}  // namespace dsv4::eval

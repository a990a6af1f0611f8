// The DeepSeek-V4.1 text forward through the engine boundary (v4.1 §9) on a tiny-v41 synthetic
// checkpoint (random weights): logits are finite and deterministic, independent of how a prompt
// is split into chunks (token by token, 7 at a time, one shot) and of the other sequences of a
// batch. 70 tokens reach the indexer's top-k (16 entries) in the ratio-2 groups and the candidate
// filter (more than 4 blocks of 8 at layer 20) in the decoder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "eval/quiet_synth_options.h"
#include "io/test_tmp_dir.h"
#include "runtime/engine.h"
#include "runtime/split_invariance.h"

namespace dsv4::runtime {
namespace {

class EngineV41 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    const eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny_v41);
    const Status s = eval::synth_checkpoint(o, dir_->path());
    ASSERT_TRUE(s.ok()) << s.to_string();
    auto e = Engine::load(dir_->path(), {});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
    dir_.reset();
  }
  static std::unique_ptr<test::TempDir> dir_;
  static Engine* engine_;
};
std::unique_ptr<test::TempDir> EngineV41::dir_;
Engine* EngineV41::engine_ = nullptr;

TEST_F(EngineV41, LogitsAreFiniteAndSplitInvariant) {
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(engine_->max_draft_tokens(), 5);   // DSpark (v4.1 §7.1: γ = 5)
  const std::vector<float> logits = expect_split_invariance(*engine_, test_tokens(70, engine_->config().vocab_size));
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  // Not degenerate: the last row's logits differ.
  const int64_t V = engine_->config().vocab_size;
  const float* last = logits.data() + 69 * V;
  EXPECT_NE(*std::max_element(last, last + V), *std::min_element(last, last + V));
}

TEST_F(EngineV41, BatchedStepEqualsSeparateSteps) {
  ASSERT_NE(engine_, nullptr);
  Engine& engine = *engine_;
  const int64_t V = engine.config().vocab_size;
  const auto a = test_tokens(41, V), b = test_tokens(9, V);
  auto sa = engine.new_sequence(), sb = engine.new_sequence();
  std::vector<float> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  ASSERT_TRUE(engine.step(*sa, a, la.data()).ok());
  ASSERT_TRUE(engine.step(*sb, b, lb.data()).ok());
  // Batched: a prefill next to another prefill, then two decodes next to each other.
  auto ta = engine.new_sequence(), tb = engine.new_sequence();
  Sequence* seqs[2] = {ta.get(), tb.get()};
  std::span<const int32_t> toks[2] = {a, b};
  std::vector<float> both(size_t(2 * V));
  ASSERT_TRUE(engine.step(seqs, toks, both.data()).ok());
  EXPECT_EQ(0, std::memcmp(both.data(), la.data(), size_t(V) * 4));
  EXPECT_EQ(0, std::memcmp(both.data() + V, lb.data(), size_t(V) * 4));
  const int32_t next[2] = {5, 7};
  ASSERT_TRUE(engine.step(*sa, std::span(&next[0], 1), la.data()).ok());
  ASSERT_TRUE(engine.step(*sb, std::span(&next[1], 1), lb.data()).ok());
  std::span<const int32_t> one[2] = {std::span(&next[0], 1), std::span(&next[1], 1)};
  ASSERT_TRUE(engine.step(seqs, one, both.data()).ok());
  EXPECT_EQ(0, std::memcmp(both.data(), la.data(), size_t(V) * 4));
  EXPECT_EQ(0, std::memcmp(both.data() + V, lb.data(), size_t(V) * 4));
}

TEST_F(EngineV41, CloneContinuesIdentically) {
  ASSERT_NE(engine_, nullptr);
  Engine& engine = *engine_;
  const int64_t V = engine.config().vocab_size;
  const auto t = test_tokens(20, V);
  auto s = engine.new_sequence();
  std::vector<float> l1(static_cast<size_t>(V)), l2(static_cast<size_t>(V));
  ASSERT_TRUE(engine.step(*s, std::span(t.data(), 13), l1.data()).ok());
  auto c = s->clone();
  ASSERT_TRUE(engine.step(*s, std::span(t.data() + 13, 7), l1.data()).ok());
  ASSERT_TRUE(engine.step(*c, std::span(t.data() + 13, 7), l2.data()).ok());
  EXPECT_EQ(0, std::memcmp(l1.data(), l2.data(), size_t(V) * 4));
}

// A state file (the prefix cache's --kv-cache-dir) holds all of a V4.1 sequence: the packed FP4
// entries of the KV sources and the Engram history included. 70 tokens reach the packed entries
// of every source and a history of real ids; a sequence loaded from the bytes continues with the
// same logits as the one saved, and bytes cut short are refused.
TEST_F(EngineV41, SavedSequenceContinuesIdentically) {
  ASSERT_NE(engine_, nullptr);
  Engine& engine = *engine_;
  const int64_t V = engine.config().vocab_size;
  const auto t = test_tokens(78, V);
  auto s = engine.new_sequence();
  std::vector<float> l1(static_cast<size_t>(V)), l2(static_cast<size_t>(V));
  ASSERT_TRUE(engine.step(*s, std::span(t.data(), 70), l1.data()).ok());
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(engine.save_sequence(*s, &bytes).ok());
  auto loaded = engine.load_sequence(bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  for (size_t i = 70; i < t.size(); ++i) {
    ASSERT_TRUE(engine.step(*s, std::span(t.data() + i, 1), l1.data()).ok());
    ASSERT_TRUE(engine.step(**loaded, std::span(t.data() + i, 1), l2.data()).ok());
    ASSERT_EQ(0, std::memcmp(l1.data(), l2.data(), size_t(V) * 4)) << "position " << i;
  }
  EXPECT_EQ(engine.load_sequence(std::span(bytes.data(), bytes.size() - 1)).status().code(), StatusCode::corrupt_data);
}

}  // namespace
}  // namespace dsv4::runtime

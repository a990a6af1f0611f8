#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "io/safetensors.h"
#include "runtime/split_invariance.h"
#include "test_paths.h"

namespace dsv4::runtime {

TEST(Engine, SplitInvarianceOnFixture) { expect_split_invariance(test::fixture_dir("tiny-c") + "/checkpoint", 200); }

TEST(Engine, SplitInvarianceOnDemoModel) { expect_split_invariance(test::demo_model_dir(), 140); }

TEST(Engine, BatchedStepEqualsSeparateSteps) {
  auto e = Engine::load(test::fixture_dir("tiny") + "/checkpoint", {});
  ASSERT_TRUE(e.ok());
  Engine& engine = **e;
  const int64_t V = engine.config().vocab_size;
  const auto a = test_tokens(30, V), b = test_tokens(9, V);
  auto sa = engine.new_sequence(), sb = engine.new_sequence();
  std::vector<float> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  ASSERT_TRUE(engine.step(*sa, a, la.data()).ok());
  ASSERT_TRUE(engine.step(*sb, b, lb.data()).ok());

  auto ta = engine.new_sequence(), tb = engine.new_sequence();
  Sequence* seqs[2] = {ta.get(), tb.get()};
  std::span<const int32_t> toks[2] = {a, b};
  std::vector<float> both(size_t(2 * V));
  ASSERT_TRUE(engine.step(seqs, toks, both.data()).ok());
  EXPECT_EQ(0, std::memcmp(both.data(), la.data(), size_t(V) * 4));
  EXPECT_EQ(0, std::memcmp(both.data() + V, lb.data(), size_t(V) * 4));
}

TEST(Engine, RejectsBadTokensAndContextOverflow) {
  EngineOptions opt;
  opt.max_context = 8;
  auto e = Engine::load(test::fixture_dir("tiny") + "/checkpoint", opt);
  ASSERT_TRUE(e.ok());
  Engine& engine = **e;
  std::vector<float> logits(size_t(engine.config().vocab_size));
  auto seq = engine.new_sequence();
  const int32_t bad[2] = {0, 5000};
  Status s = engine.step(*seq, bad, logits.data());
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_EQ(seq->position(), 0);
  const std::vector<int32_t> nine(9, 3);
  s = engine.step(*seq, nine, logits.data());
  EXPECT_EQ(s.code(), StatusCode::out_of_range);
  EXPECT_EQ(seq->position(), 0);
}

TEST(Engine, CloneContinuesIdentically) {
  auto e = Engine::load(test::fixture_dir("tiny") + "/checkpoint", {});
  ASSERT_TRUE(e.ok());
  Engine& engine = **e;
  const int64_t V = engine.config().vocab_size;
  const auto t = test_tokens(20, V);
  auto seq = engine.new_sequence();
  std::vector<float> l1(static_cast<size_t>(V)), l2(static_cast<size_t>(V));
  ASSERT_TRUE(engine.step(*seq, std::span(t.data(), 15), l1.data()).ok());
  auto copy = seq->clone();
  ASSERT_TRUE(engine.step(*seq, std::span(t.data() + 15, 5), l1.data()).ok());
  ASSERT_TRUE(engine.step(*copy, std::span(t.data() + 15, 5), l2.data()).ok());
  EXPECT_EQ(0, std::memcmp(l1.data(), l2.data(), size_t(V) * 4));
}

}  // namespace dsv4::runtime

namespace dsv4::runtime {

// The trained demo model agrees with HF transformers' logits (HF numerics: no FP8 activation
// quantisation, so not bit-close) on the greedy token at the large majority of positions.
TEST(Engine, DemoModelTop1AgreesWithHfReference) {
  auto e = Engine::load(test::demo_model_dir(), {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ref = io::open_safetensors(test::shared_dir() + "/models/dsv4-demo-reference-hf.safetensors");
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  const io::TensorEntry *tok = nullptr, *logits = nullptr;
  for (const auto& t : ref->header.tensors) {
    if (t.name == "tokens") tok = &t;
    if (t.name == "logits") logits = &t;
  }
  ASSERT_TRUE(tok && logits);
  const auto* tokens = reinterpret_cast<const int32_t*>(tok->data);
  const auto* hf = reinterpret_cast<const float*>(logits->data);
  const int64_t T = tok->shape[0], V = logits->shape[1];
  ASSERT_EQ(V, (*e)->config().vocab_size);
  auto seq = (*e)->new_sequence();
  std::vector<float> ours(static_cast<size_t>(V));
  int64_t agree = 0;
  for (int64_t t = 0; t < T; ++t) {
    ASSERT_TRUE((*e)->step(*seq, std::span(tokens + t, 1), ours.data()).ok());
    const auto argmax = [&](const float* l) { return std::max_element(l, l + V) - l; };
    agree += argmax(ours.data()) == argmax(hf + t * V);
  }
  EXPECT_GE(double(agree) / double(T), 0.93) << agree << " of " << T;   // measured 291/300
}

}  // namespace dsv4::runtime

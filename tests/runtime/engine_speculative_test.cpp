// Speculative decoding on the real engine (addendum §A5): verify chunks and commit() on the
// model's state, the preview's MTP drafter, and the scheduler's greedy identity with a drafter
// whose proposals are the target's own continuation with a rejection forced at every draft slot
// (eval/oracle_drafts.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "eval/oracle_drafts.h"
#include "eval/quiet_synth_options.h"
#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "runtime/split_invariance.h"
#include "test_paths.h"

namespace dsv4::runtime {
namespace {

using namespace std::chrono_literals;

class Greedy final : public DraftChooser {
 public:
  int32_t choose(int, std::span<const float> z) override {
    return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
  }
};

// The checkpoints: the tiny fixture (the preview's layout, with its MTP block), a synthetic
// Flash-0731-shaped one (DSpark, 3 stages, block 5) and a synthetic V4.1-Flash-shaped one (tiny-v41:
// DSpark with its own MoE and layer-input taps, v4.1 §7; shared FP4 KV, the ratio-2 pending pair,
// the indexer keys and the Engram lookback are all cut back by commit()).
class EngineSpeculative : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    dir_v41_ = std::make_unique<test::TempDir>();
    ASSERT_TRUE(eval::synth_checkpoint(test::quiet_synth_options(eval::SynthPreset::tiny_0731), dir_->path()).ok());
    // 25 layers keep every V4.1 role (KV sources 2, 8, 14, 20; candidate source 20 and consumer
    // 24; Engram 1, 14) at 5/8 of the cost of 40.
    eval::SynthOptions v41 = test::quiet_synth_options(eval::SynthPreset::tiny_v41);
    v41.layers = 25;
    ASSERT_TRUE(eval::synth_checkpoint(v41, dir_v41_->path()).ok());
  }
  static void TearDownTestSuite() {
    dir_.reset();
    dir_v41_.reset();
  }
  static std::string checkpoint() {
    const std::string p = GetParam();
    return p == "mtp" ? test::fixture_dir("tiny") + "/checkpoint" : p == "dspark-v41" ? dir_v41_->path() : dir_->path();
  }
  static inline std::unique_ptr<test::TempDir> dir_, dir_v41_;
};

INSTANTIATE_TEST_SUITE_P(Drafters, EngineSpeculative, ::testing::Values("mtp", "dspark", "dspark-v41"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           std::string name = i.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The drafter's output after a committed prefix does not depend on how the prefix was fed:
// token by token with a draft at every step, in one long chunk (longer than the window, so only
// the last rows are absorbed), or through verify rounds with rejected tokens.
TEST_P(EngineSpeculative, DraftDependsOnlyOnTheCommittedPrefix) {
  auto e = Engine::load(checkpoint(), {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  Engine& engine = **e;
  const int K = engine.max_draft_tokens();
  ASSERT_EQ(K, std::string(GetParam()) == "mtp" ? 1 : 5);
  const int64_t V = engine.config().vocab_size;
  const auto t = test_tokens(200, V);
  Greedy greedy;
  DraftOptions all;
  all.max_tokens = K;
  std::vector<float> logits(static_cast<size_t>(6 * V)), z(static_cast<size_t>(K * V));
  std::vector<std::vector<float>> z_at(t.size());   // draft logits with anchor t[p], p tokens committed
  std::vector<int32_t> d(static_cast<size_t>(K));
  auto stepwise = engine.new_sequence();
  for (size_t p = 0; p + 1 < t.size(); ++p) {
    ASSERT_TRUE(engine.step(*stepwise, std::span(&t[p], 1), logits.data()).ok());
    auto n = engine.draft(*stepwise, t[p + 1], all, greedy, d.data(), z.data());
    ASSERT_TRUE(n.ok()) << n.status().to_string();
    ASSERT_EQ(*n, K);
    z_at[p + 1] = z;
  }
  const size_t bytes = z.size() * sizeof(float);
  for (int64_t prefix : {3, 129, 180}) {
    SCOPED_TRACE(prefix);
    auto chunked = engine.new_sequence();
    ASSERT_TRUE(engine.step(*chunked, std::span(t.data(), size_t(prefix)), logits.data()).ok());
    ASSERT_TRUE(engine.draft(*chunked, t[size_t(prefix)], all, greedy, d.data(), z.data()).ok());
    EXPECT_EQ(0, std::memcmp(z.data(), z_at[size_t(prefix)].data(), bytes));
  }
  // Verify rounds: [anchor, right, wrong] keeps 2; the drafts then equal the stepwise ones.
  auto rounds = engine.new_sequence();
  ASSERT_TRUE(engine.step(*rounds, std::span(t.data(), 10), logits.data()).ok());
  for (int64_t p = 10; p + 3 < 150; p += 2) {
    ASSERT_TRUE(engine.draft(*rounds, t[size_t(p)], all, greedy, d.data(), z.data()).ok());
    ASSERT_EQ(0, std::memcmp(z.data(), z_at[size_t(p)].data(), bytes)) << "position " << p;
    const int32_t chunk[3] = {t[size_t(p)], t[size_t(p + 1)], int32_t((t[size_t(p + 2)] + 1) % V)};
    Sequence* s = rounds.get();
    const std::span<const int32_t> feed(chunk, 3);
    const Feed kind = Feed::verify;
    ASSERT_TRUE(engine.step(std::span(&s, 1), std::span(&feed, 1), std::span(&kind, 1), logits.data()).ok());
    EXPECT_EQ(engine.step(*rounds, std::span(chunk, 1), logits.data()).code(), StatusCode::invalid_argument);
    EXPECT_EQ(engine.commit(*rounds, 4).code(), StatusCode::out_of_range);
    ASSERT_TRUE(engine.commit(*rounds, 2).ok());
    EXPECT_EQ(rounds->position(), p + 2);
  }
  // Misuse is refused and changes nothing.
  const int64_t at = rounds->position();
  EXPECT_EQ(engine.commit(*rounds, 1).code(), StatusCode::invalid_argument);   // no open chunk
  EXPECT_EQ(engine.draft(*rounds, int32_t(V), all, greedy, d.data(), z.data()).status().code(),
            StatusCode::invalid_argument);
  const int64_t W = engine.config().sliding_window;
  std::vector<int32_t> wide(static_cast<size_t>(W + 1), 3);
  Sequence* s = rounds.get();
  const std::span<const int32_t> feed(wide);
  const Feed kind = Feed::verify;
  std::vector<float> many(static_cast<size_t>((W + 1) * V));
  EXPECT_EQ(engine.step(std::span(&s, 1), std::span(&feed, 1), std::span(&kind, 1), many.data()).code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(rounds->position(), at);
  EXPECT_TRUE(engine.draft(*rounds, t[size_t(at)], all, greedy, d.data(), z.data()).ok());
}

// One step may mix a verify chunk and append feeds (continuous batching): the logits and the
// states after commit equal those of separate steps.
TEST_P(EngineSpeculative, VerifyAndAppendFeedsShareAStep) {
  auto e = Engine::load(checkpoint(), {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  Engine& engine = **e;
  const int64_t V = engine.config().vocab_size;
  const auto t = test_tokens(40, V);
  auto a = engine.new_sequence(), b = engine.new_sequence(), a1 = engine.new_sequence(), b1 = engine.new_sequence();
  std::vector<float> logits(static_cast<size_t>(8 * V)), alone(static_cast<size_t>(8 * V));
  for (auto* s : {a.get(), a1.get()}) ASSERT_TRUE(engine.step(*s, std::span(t.data(), 20), logits.data()).ok());
  for (auto* s : {b.get(), b1.get()}) ASSERT_TRUE(engine.step(*s, std::span(t.data() + 5, 9), logits.data()).ok());
  const std::span<const int32_t> va(t.data() + 20, 4), vb(t.data() + 14, 3);
  Sequence* both[2] = {a.get(), b.get()};
  const std::span<const int32_t> feeds[2] = {va, vb};
  const Feed kinds[2] = {Feed::verify, Feed::append};
  ASSERT_TRUE(engine.step(both, feeds, kinds, logits.data()).ok());   // 4 rows for a, then 1 for b
  Sequence* one = a1.get();
  ASSERT_TRUE(engine.step(std::span(&one, 1), std::span(&va, 1), std::span(&kinds[0], 1), alone.data()).ok());
  ASSERT_TRUE(engine.step(*b1, vb, alone.data() + 4 * V).ok());
  EXPECT_EQ(0, std::memcmp(logits.data(), alone.data(), size_t(5 * V) * sizeof(float)));
  ASSERT_TRUE(engine.commit(*a, 2).ok());
  ASSERT_TRUE(engine.commit(*a1, 2).ok());
  // Both continue identically.
  for (auto [x, y] : {std::pair{a.get(), a1.get()}, std::pair{b.get(), b1.get()}}) {
    ASSERT_TRUE(engine.step(*x, std::span(t.data() + 30, 5), logits.data()).ok());
    ASSERT_TRUE(engine.step(*y, std::span(t.data() + 30, 5), alone.data()).ok());
    EXPECT_EQ(0, std::memcmp(logits.data(), alone.data(), size_t(V) * sizeof(float)));
  }
}

std::vector<int32_t> generate(Engine& e, const std::vector<int32_t>& prompt, int64_t n, GenerationEvent* fin) {
  SchedulerOptions o;
  o.adaptive_drafting = false;   // draft at every step, whatever it costs
  Scheduler s(e, o);
  auto g = s.submit([&] {
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling.temperature = 0;
    r.max_tokens = n;
    return r;
  }());
  EXPECT_TRUE(g.ok());
  std::vector<int32_t> out;
  for (int i = 0; i < 100000; ++i) {
    auto ev = (*g)->next(100ms);
    if (!ev) continue;
    if (ev->kind == GenerationEvent::Kind::token) out.push_back(ev->sampled.token);
    if (ev->kind == GenerationEvent::Kind::finished) {
      *fin = *ev;
      break;
    }
  }
  return out;
}

// Greedy output over 300 tokens (crossing CSA windows and the 128-token HCA window twice) is
// token for token the plain output, with rejections at every draft slot.
TEST_P(EngineSpeculative, GreedyOutputIsIdenticalWithForcedRejections) {
  EngineOptions off;
  off.speculative = false;
  auto plain = Engine::load(checkpoint(), off);
  auto spec = Engine::load(checkpoint(), {});
  ASSERT_TRUE(plain.ok() && spec.ok());
  EXPECT_EQ((*plain)->max_draft_tokens(), 0);
  const std::vector<int32_t> prompt = {0, 17, 99, 3, 250};
  GenerationEvent fin;
  const std::vector<int32_t> expected = generate(**plain, prompt, 300, &fin);
  ASSERT_EQ(expected.size(), 300u);
  EXPECT_EQ(fin.drafted_tokens, 0);

  // The checkpoint's own (random) drafter.
  EXPECT_EQ(generate(**spec, prompt, 300, &fin), expected);
  EXPECT_GT(fin.drafted_tokens, 100);

  std::vector<int32_t> stream = prompt;
  stream.insert(stream.end(), expected.begin(), expected.end());
  // Drafts that are the target's continuation with slot (round mod 6) wrong: every slot is
  // rejected in turn, and every sixth round accepts the whole block.
  eval::OracleDrafts oracle(**spec, stream, 5, [](int64_t round) { return int(round % 6); });
  EXPECT_EQ(generate(oracle, prompt, 300, &fin), expected);
  EXPECT_GT(fin.accepted_tokens, 150);
  EXPECT_LT(fin.accepted_tokens, fin.drafted_tokens);
}

}  // namespace
}  // namespace dsv4::runtime

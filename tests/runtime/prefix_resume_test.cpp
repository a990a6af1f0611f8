// Resuming from the prefix cache on a real model: a hit in memory or in a state file gives the
// output a cold server gives (greedy: bit-identical tokens), wherever the snapshot is.
#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/generation_helpers.h"
#include "runtime/prefix_store.h"
#include "runtime/scheduler.h"
#include "runtime/split_invariance.h"
#include "test_paths.h"

namespace dsv4::runtime {
namespace {

using Tokens = std::vector<int32_t>;

Tokens cat(Tokens a, const Tokens& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Tokens head(const Tokens& t, size_t n) { return Tokens(t.begin(), t.begin() + ptrdiff_t(n)); }

test::Collected generate(Scheduler& s, const Tokens& prompt, std::vector<int64_t> starts = {}, int n = 8) {
  GenerationRequest r = test::greedy_request(prompt, n);
  r.message_starts = std::move(starts);
  auto g = s.submit(std::move(r));
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return test::collect(**g);
}

class PrefixResume : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = Engine::load(test::demo_model_dir(), {});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    const int64_t V = engine_->config().vocab_size;
    a_ = test_tokens(150, V);
    Tokens other = test_tokens(200, V - 7);
    for (int32_t& t : other) t += 3;
    b_ = cat(head(a_, 100), head(other, 30));        // diverges at a message start (100)
    c_ = cat(head(a_, 80), Tokens(other.begin() + 40, other.begin() + 70));  // inside a message
  }
  // The cold outputs: no cache at all.
  Tokens cold(const Tokens& prompt) {
    SchedulerOptions o;
    o.cache_bytes = 0;
    Scheduler s(*engine_, o);
    return generate(s, prompt).tokens;
  }
  SchedulerOptions cached_options() const {
    SchedulerOptions o;
    o.snapshot_interval = 64;
    o.step_token_budget = 48;   // prefill in several chunks, cut at the snapshot points
    return o;
  }
  std::unique_ptr<Engine> engine_;
  Tokens a_, b_, c_;
  const std::vector<int64_t> starts_ = {40, 100};
};

TEST_F(PrefixResume, MemoryHitsGiveTheColdOutput) {
  const Tokens cold_b = cold(b_), cold_c = cold(c_);
  Scheduler s(*engine_, cached_options());
  const auto ra = generate(s, a_, starts_);
  EXPECT_EQ(ra.finished.cached_tokens, 0);
  const auto rb = generate(s, b_, {40, 100});
  EXPECT_EQ(rb.finished.cached_tokens, 100);   // at the message start before the divergence
  EXPECT_EQ(rb.tokens, cold_b);
  const auto rc = generate(s, c_);
  EXPECT_EQ(rc.finished.cached_tokens, 64);    // the interval snapshot inside the message
  EXPECT_EQ(rc.tokens, cold_c);
  // The next turn continues the finished sequence of a_ (its prompt and output, the last
  // sampled token not fed yet).
  const Tokens d = cat(cat(a_, ra.tokens), {5, 6, 7});
  const auto rd = generate(s, d);
  EXPECT_EQ(rd.finished.cached_tokens, int64_t(a_.size() + ra.tokens.size() - 1));
  EXPECT_EQ(rd.tokens, cold(d));
}

// A snapshot evicted under a small byte cap is simply not found: the request is prefilled
// from the deepest snapshot left, with the same output.
TEST_F(PrefixResume, EvictionUnderASmallCapKeepsOutputsExact) {
  const Tokens cold_b = cold(b_);
  auto probe = engine_->new_sequence();
  SchedulerOptions o = cached_options();
  std::vector<float> logits(size_t(engine_->config().vocab_size));
  ASSERT_TRUE(engine_->step(*probe, std::span(a_.data(), 100), logits.data()).ok());
  o.cache_bytes = probe->clone()->memory_bytes() * 5 / 2;   // two snapshots of ~100 tokens
  Scheduler s(*engine_, o);
  generate(s, a_, starts_);
  EXPECT_LE(s.stats().prefix_cache_bytes, o.cache_bytes);
  EXPECT_LE(s.stats().prefix_snapshots, 2u);
  const auto rb = generate(s, b_, starts_);
  EXPECT_LT(rb.finished.cached_tokens, 100);
  EXPECT_EQ(rb.tokens, cold_b);
}

// A restarted server (a new scheduler and store on the same directory) resumes from the state
// files the first one wrote.
TEST_F(PrefixResume, StateFilesSurviveARestart) {
  const Tokens cold_b = cold(b_);
  const std::string dir = ::testing::TempDir() + "/dsv4-prefix-resume";
  std::filesystem::remove_all(dir);
  PrefixStoreOptions po;
  po.dir = dir;
  po.fingerprint = "demo";
  Tokens first;
  {
    auto store = PrefixStore::open(*engine_, po);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    Scheduler s(*engine_, cached_options(), std::move(store).value());
    first = generate(s, a_, starts_).tokens;
  }   // the store writes what is queued before it closes
  auto store = PrefixStore::open(*engine_, po);
  ASSERT_TRUE(store.ok());
  EXPECT_GE((*store)->stats().files, 4u);   // 40, 64, 100, 128 and the finished sequence
  Scheduler s(*engine_, cached_options(), std::move(store).value());
  const auto rb = generate(s, b_, starts_);
  EXPECT_EQ(rb.finished.cached_tokens, 100);
  EXPECT_EQ(rb.tokens, cold_b);
  EXPECT_EQ(s.stats().prefix_disk_hits, 1u);
  // The same prompt as before the restart: from its last snapshot, the same output.
  const auto ra = generate(s, a_, starts_);
  EXPECT_EQ(ra.finished.cached_tokens, 128);
  EXPECT_EQ(ra.tokens, first);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsv4::runtime

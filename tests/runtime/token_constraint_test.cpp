// The scheduler's structured-output hook (runtime/token_constraint.h) with a toy rule: every
// sampled answer token obeys it, it starts after the answer start and the forced prefix, it ends
// at EOS, and speculative decoding neither changes a greedy output nor lets a refused draft in;
// a drafter that knows the target's logits has every (masked) draft accepted.
#include <gtest/gtest.h>

#include <limits>

#include "fake_engine.h"
#include "generation_helpers.h"
#include "runtime/scheduler.h"

namespace dsv4::runtime {
namespace {

using test::collect;
using test::Collected;
using test::FakeEngine;
using test::greedy_request;

constexpr int32_t kEos = 1;  // FakeEngine's

// Token i of the constrained text must be >= 2 and congruent to i mod 3; after `length` tokens
// only EOS may come. `log` records every token the rule was advanced by (clones excluded).
class ModThree final : public TokenConstraint {
 public:
  ModThree(int length, std::vector<int32_t>* log) : length_(length), log_(log) {}
  bool allows(int32_t t) const {
    if (ended_) return false;
    if (count_ == length_) return t == kEos;
    return t >= 2 && t % 3 == count_ % 3;
  }
  bool mask(std::span<float> logits) override {
    bool any = false;
    for (size_t t = 0; t < logits.size(); ++t) {
      if (!allows(int32_t(t))) logits[t] = -std::numeric_limits<float>::infinity();
      any |= allows(int32_t(t));
    }
    return any;
  }
  void advance(int32_t t) override {
    EXPECT_TRUE(allows(t)) << t << " at " << count_;
    if (log_) log_->push_back(t);
    if (t == kEos) ended_ = true;
    else count_ += 1;
  }
  std::unique_ptr<TokenConstraint> clone() const override {
    auto c = std::make_unique<ModThree>(*this);
    c->log_ = nullptr;
    return c;
  }

 private:
  int length_;
  std::vector<int32_t>* log_;
  int count_ = 0;
  bool ended_ = false;
};

SchedulerOptions always_draft() {
  SchedulerOptions o;
  o.adaptive_drafting = false;
  return o;
}

Collected run(FakeEngine& e, GenerationRequest r) {
  Scheduler s(e, always_draft());
  auto g = s.submit(std::move(r));
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? collect(**g) : Collected{};
}

GenerationRequest constrained(int length, std::vector<int32_t>* log, int64_t max_tokens = 100) {
  GenerationRequest r = greedy_request({0, 5, 9, 3}, max_tokens);
  r.constraint = std::make_shared<ModThree>(length, log);
  return r;
}

TEST(TokenConstraint, EverySampledTokenObeysAndTheOutputEndsAtEos) {
  FakeEngine e;
  std::vector<int32_t> log;
  const Collected c = run(e, constrained(20, &log));
  ASSERT_EQ(c.tokens.size(), 20u);
  for (size_t i = 0; i < c.tokens.size(); ++i) EXPECT_EQ(c.tokens[i] % 3, int(i % 3)) << i;
  EXPECT_EQ(c.finished.finish, FinishReason::stop);
  EXPECT_EQ(c.finished.stop_token, std::optional<int32_t>(kEos));
  ASSERT_EQ(log.size(), 21u);
  EXPECT_EQ(log.back(), kEos);
  // Sampled requests obey it too.
  auto r = constrained(30, nullptr);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 7;
  const Collected s = run(e, std::move(r));
  ASSERT_EQ(s.tokens.size(), 30u);
  for (size_t i = 0; i < s.tokens.size(); ++i) EXPECT_EQ(s.tokens[i] % 3, int(i % 3)) << i;
}

TEST(TokenConstraint, StartsAfterTheAnswerStartAndPrefix) {
  FakeEngine e;
  std::vector<int32_t> log;
  auto r = constrained(12, &log);
  r.answer_start_token = 60;
  r.banned_tokens = {60};
  r.thinking_budget = 5;     // forces 60 after five free tokens
  r.answer_prefix = {61, 7};
  const Collected c = run(e, std::move(r));
  ASSERT_EQ(c.tokens.size(), 5u + 3u + 12u);
  EXPECT_EQ(c.tokens[5], 60);
  EXPECT_EQ(c.tokens[6], 61);
  EXPECT_EQ(c.tokens[7], 7);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(c.tokens[8 + i] % 3, int(i % 3)) << i;
  EXPECT_EQ(log.size(), 13u);  // the twelve answer tokens and EOS
}

TEST(TokenConstraint, SpeculationKeepsGreedyOutputsAndMasksDrafts) {
  FakeEngine plain;
  const Collected expected = run(plain, constrained(150, nullptr, 200));
  ASSERT_EQ(expected.tokens.size(), 150u);
  // A drafter that is often wrong, with drafts the rule refuses among them.
  for (int period : {1, 2, 6}) {
    SCOPED_TRACE(period);
    FakeEngine spec;
    spec.max_drafts = 5;
    spec.draft_logits = [&spec, period](const std::vector<int32_t>& history, int slot, float* z) {
      spec.fill_logits(history, z);
      if (int64_t(history.size() / 6) % period == slot) z[(history.size() * 7) % 64] += 9.0f;
    };
    const Collected c = run(spec, constrained(150, nullptr, 200));
    EXPECT_EQ(c.tokens, expected.tokens);
    EXPECT_GT(c.finished.drafted_tokens, 0);
  }
  // The drafter knows the target's logits: masked by the rule, every draft is what verify picks
  // (the drafts past EOS aside).
  FakeEngine perfect;
  perfect.max_drafts = 5;
  const Collected p = run(perfect, constrained(150, nullptr, 200));
  EXPECT_EQ(p.tokens, expected.tokens);
  EXPECT_GE(p.finished.accepted_tokens, p.finished.drafted_tokens - 5);
  EXPECT_GT(p.finished.accepted_tokens, 100);
}

TEST(TokenConstraint, RefusalsAndDeadEnds) {
  FakeEngine e;
  Scheduler s(e, SchedulerOptions{});
  auto r = constrained(5, nullptr);
  r.ignore_eos = true;
  EXPECT_FALSE(s.submit(std::move(r)).ok());
  // A rule that allows nothing ends the request with an error instead of sampling from -inf.
  auto dead = constrained(0, nullptr);
  dead.constraint->advance(kEos);
  const Collected c = collect(*s.submit(std::move(dead)).value());
  EXPECT_EQ(c.finished.finish, FinishReason::error);
  EXPECT_TRUE(c.tokens.empty());
}

}  // namespace
}  // namespace dsv4::runtime

#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace dsv4::runtime {
namespace {

std::vector<float> logits_a() { return {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f}; }

SampledToken sample_once(SamplingParams p, std::vector<float> l, std::vector<int32_t> prompt = {}) {
  Sampler s(p, prompt);
  return s.sample(l);
}

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(sample_once(p, logits_a()).token, 1);
  p.temperature = 1;
  p.top_k = 1;
  EXPECT_EQ(sample_once(p, logits_a()).token, 1);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  SamplingParams p;
  p.seed = 42;
  std::vector<float> flat(1000, 0.0f);
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, {});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      auto l = flat;
      out.push_back(s.sample(l).token);
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, TopKRestrictsToTheKBest) {
  SamplingParams p;
  p.top_k = 2;
  p.seed = 1;
  Sampler s(p, {});
  for (int i = 0; i < 200; ++i) {
    auto l = logits_a();
    int32_t t = s.sample(l).token;
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // probabilities ~ {0.7, 0.2, 0.1}: top_p 0.75 keeps tokens 0 and 1 only.
  std::vector<float> l = {std::log(0.7f), std::log(0.2f), std::log(0.1f)};
  SamplingParams p;
  p.top_p = 0.75f;
  p.seed = 7;
  Sampler s(p, {});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 400; ++i) {
    auto c = l;
    seen[s.sample(c).token]++;
  }
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  std::vector<float> l = {std::log(0.6f), std::log(0.35f), std::log(0.05f)};
  SamplingParams p;
  p.min_p = 0.1f;  // floor 0.06: token 2 (0.05) goes
  p.seed = 3;
  Sampler s(p, {});
  for (int i = 0; i < 400; ++i) {
    auto c = l;
    EXPECT_NE(s.sample(c).token, 2);
  }
}

TEST(Sampler, SamplingFollowsTheDistribution) {
  std::vector<float> l = {std::log(0.75f), std::log(0.25f)};
  SamplingParams p;
  p.seed = 11;
  Sampler s(p, {});
  int zeros = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto c = l;
    zeros += s.sample(c).token == 0;
  }
  EXPECT_NEAR(double(zeros) / n, 0.75, 0.03);
}

TEST(Sampler, FrequencyAndPresencePenaltiesLowerRepeatedTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.frequency_penalty = 1.5f;
  Sampler s(p, {});
  std::vector<float> l = {2.0f, 1.0f, 0.0f};
  auto c = l;
  EXPECT_EQ(s.sample(c).token, 0);  // no history yet
  c = l;
  EXPECT_EQ(s.sample(c).token, 1);  // 2 - 1.5 = 0.5 < 1
  SamplingParams q;
  q.temperature = 0;
  q.presence_penalty = 2.0f;
  Sampler s2(q, {});
  c = l;
  EXPECT_EQ(s2.sample(c).token, 0);
  c = l;
  EXPECT_EQ(s2.sample(c).token, 1);
}

TEST(Sampler, RepetitionPenaltyCoversThePrompt) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  std::vector<float> l = {2.0f, 1.5f, -1.0f};
  EXPECT_EQ(sample_once(p, l, {0, 0, 0}).token, 1);  // 2/2 = 1 < 1.5, penalised once
  p.repetition_penalty = 1.0f;
  EXPECT_EQ(sample_once(p, l, {0}).token, 0);
}

TEST(Sampler, LogprobsAreThoseOfTheRawDistribution) {
  SamplingParams p;
  p.temperature = 0;
  p.top_logprobs = 3;
  p.frequency_penalty = 2.0f;  // must not change the reported numbers
  std::vector<float> l = logits_a();
  auto r = sample_once(p, l);
  double z = 0;
  for (float x : l) z += std::exp(double(x));
  EXPECT_NEAR(r.logprob, 3.0 - std::log(z), 1e-5);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].token, 1);
  EXPECT_EQ(r.top[1].token, 3);
  EXPECT_EQ(r.top[2].token, 2);
  EXPECT_NEAR(r.top[2].logprob, 2.0 - std::log(z), 1e-5);
}

// Step 0: the bias is added before penalties and the draw; -100 keeps a token from being
// picked, and reported log-probabilities stay those of the raw logits.
TEST(Sampler, LogitBiasShiftsLogitsBeforeThePenalties) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{1, -100.0f}, {3, -100.0f}, {4, 3.5f}};
  EXPECT_EQ(sample_once(p, logits_a()).token, 4);   // -1 + 3.5 = 2.5 beats 2
  p.logit_bias = {{1, -100.0f}, {3, -100.0f}};
  EXPECT_EQ(sample_once(p, logits_a()).token, 2);
  p.logit_bias = {{1, -100.0f}, {3, -100.0f}, {2, 2.0f}};
  p.presence_penalty = 2.0f;                        // applies after the bias
  Sampler s(p, {});
  auto l = logits_a();
  EXPECT_EQ(s.sample(l).token, 2);                  // 4
  l = logits_a();
  EXPECT_EQ(s.sample(l).token, 2);                  // 4 - 2 = 2 > 1 (token 0)
  p = {};
  p.temperature = 1;
  p.seed = 3;
  p.logit_bias = {{0, -100.0f}, {1, -100.0f}, {2, -100.0f}, {3, -100.0f}, {5, -100.0f}};
  p.top_logprobs = 1;
  for (int i = 0; i < 20; ++i) {
    auto r = sample_once(p, logits_a());
    EXPECT_EQ(r.token, 4);
    EXPECT_EQ(r.top[0].token, 1);                   // raw distribution
  }
}

TEST(Sampler, ValidationNamesTheField) {
  SamplingParams p;
  p.temperature = -1;
  auto st = validate_sampling(p);
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("temperature"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_FALSE(validate_sampling(p).ok());
  p = {};
  p.top_logprobs = 21;
  EXPECT_FALSE(validate_sampling(p).ok());
  p = {};
  p.temperature = NAN;
  EXPECT_FALSE(validate_sampling(p).ok());
  p = {};
  p.logit_bias = {{3, 100.5f}};
  EXPECT_NE(validate_sampling(p).message().find("logit_bias"), std::string::npos);
  p.logit_bias = {{-1, 1.0f}};
  EXPECT_FALSE(validate_sampling(p).ok());
  p.logit_bias = {{3, NAN}};
  EXPECT_FALSE(validate_sampling(p).ok());
  p.logit_bias.assign(kMaxLogitBiasTokens + 1, {3, 1.0f});
  EXPECT_FALSE(validate_sampling(p).ok());
  EXPECT_TRUE(validate_sampling(SamplingParams{}).ok());
}

}  // namespace
}  // namespace dsv4::runtime

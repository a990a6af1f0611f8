// Speculative decoding in the scheduler (addendum §A5): with any drafter, at any acceptance,
// greedy output equals plain greedy output token for token; sampled output keeps the target's
// distribution (Sampler::draft/verify, the lossless rule of §A5.2); stops, max_tokens, forced
// tokens, cancellation and prefix reuse behave as without speculation. The engine here is the
// fake one (fake_engine.h); tests/runtime/engine_speculative_test.cpp runs the real model.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/fake_engine.h"
#include "runtime/generation_helpers.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"

namespace dsv4::runtime {
namespace {

using namespace std::chrono_literals;
using test::FakeEngine;

using test::collect;
using test::Collected;
using test::greedy_request;

// Drafts at every decode step (no adaptive gating), so that counts are predictable.
SchedulerOptions always_draft() {
  SchedulerOptions o;
  o.adaptive_drafting = false;
  return o;
}

Collected run_one(Engine& e, const GenerationRequest& r, SchedulerOptions o = always_draft()) {
  Scheduler s(e, o);
  auto g = s.submit(r);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return collect(**g);
}

// The target's own logits, except that at slot (history length mod period) the best token is
// pushed below another: every draft position gets rejected in turn, and between them whole
// blocks are accepted.
void install_mismatching_drafter(FakeEngine& e, int max_drafts, int period) {
  e.max_drafts = max_drafts;
  e.draft_logits = [&e, period](const std::vector<int32_t>& history, int slot, float* z) {
    e.fill_logits(history, z);
    if (int64_t(history.size() / 6) % period == slot) {
      int32_t best = 0;
      for (int64_t v = 1; v < e.config().vocab_size; ++v)
        if (z[v] > z[best]) best = int32_t(v);
      z[(best + 1) % e.config().vocab_size] = z[best] + 1.0f;
    }
  };
}

TEST(Speculative, GreedyOutputIsIdenticalAtAnyAcceptance) {
  FakeEngine plain;
  const std::vector<int32_t> prompt = {0, 5, 9, 3};
  const Collected expected = run_one(plain, greedy_request(prompt, 300));
  ASSERT_EQ(expected.tokens.size(), 300u);
  // period 6: slots 0..4 rejected in turn, and every sixth block fully accepted; 1: always slot 0.
  for (int period : {1, 2, 6}) {
    SCOPED_TRACE(period);
    FakeEngine spec;
    install_mismatching_drafter(spec, 5, period);
    Scheduler s(spec, always_draft());
    auto c = collect(*s.submit(greedy_request(prompt, 300)).value());
    EXPECT_EQ(c.tokens, expected.tokens);
    EXPECT_EQ(c.finished.finish, FinishReason::length);
    EXPECT_EQ(c.finished.generated_tokens, 300);
    EXPECT_GT(c.finished.drafted_tokens, 0);
    EXPECT_GT(s.stats().spec_rounds, 0u);
    if (period == 1) {
      EXPECT_EQ(c.finished.accepted_tokens, 0);
    }
    if (period == 6) {
      EXPECT_GT(c.finished.accepted_tokens, 100);
    }
    EXPECT_EQ(uint64_t(c.finished.accepted_tokens), s.stats().accepted_tokens);
  }
}

TEST(Speculative, PerfectDrafterAcceptsEveryDraftAndCutsAtMaxTokens) {
  FakeEngine plain, spec;
  spec.max_drafts = 5;
  const std::vector<int32_t> prompt = {0, 8, 1 + 1, 4};
  for (int64_t n : {1, 2, 6, 7, 13, 100}) {
    SCOPED_TRACE(n);
    const Collected expected = run_one(plain, greedy_request(prompt, n));
    const Collected c = run_one(spec, greedy_request(prompt, n));
    EXPECT_EQ(c.tokens, expected.tokens);
    EXPECT_EQ(c.finished.generated_tokens, n);
    // Drafts never reach past max_tokens: all of them are accepted.
    EXPECT_EQ(c.finished.accepted_tokens, c.finished.drafted_tokens);
  }
  SchedulerOptions fewer = always_draft();
  fewer.draft_tokens = 2;
  const Collected c = run_one(spec, greedy_request(prompt, 60), fewer);
  EXPECT_EQ(c.tokens, run_one(plain, greedy_request(prompt, 60)).tokens);
  // 60 tokens: the first after the prompt, then rounds of 3 (2 drafts + 1).
  EXPECT_EQ(c.finished.drafted_tokens, 2 * 59 / 3 + 0);
}

TEST(Speculative, StopsInsideAnAcceptedRunEmitNothingPastThem) {
  FakeEngine plain;
  const std::vector<int32_t> prompt = {0, 2, 7};
  const Collected free_run = run_one(plain, greedy_request(prompt, 40));
  // A stop token id that first appears mid-run, and EOS made likely.
  auto r = greedy_request(prompt, 40);
  r.stop_token_ids = {free_run.tokens[9]};
  FakeEngine spec;
  spec.max_drafts = 5;
  EXPECT_EQ(run_one(spec, r).tokens, run_one(plain, r).tokens);
  const Collected stopped = run_one(spec, r);
  EXPECT_EQ(stopped.finished.finish, FinishReason::stop);
  EXPECT_EQ(stopped.finished.stop_token, std::optional<int32_t>(free_run.tokens[9]));
  EXPECT_EQ(stopped.finished.generated_tokens, int64_t(stopped.tokens.size()) + 1);

  for (float eos : {1.0f, 2.0f, 3.0f}) {
    SCOPED_TRACE(eos);
    plain.eos_bias = spec.eos_bias = eos;
    const Collected a = run_one(plain, greedy_request(prompt, 200)), b = run_one(spec, greedy_request(prompt, 200));
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.finished.finish, b.finished.finish);
    EXPECT_EQ(a.finished.generated_tokens, b.finished.generated_tokens);
  }
}

TEST(Speculative, ForcedTokensBansAndBiasHoldInsideARound) {
  FakeEngine plain, spec;
  install_mismatching_drafter(spec, 5, 6);
  auto r = greedy_request({0, 3, 2, 8}, 40);
  r.answer_start_token = 60;
  r.banned_tokens = {60, 7};
  r.sampling.logit_bias = {{9, 1.5f}, {11, -2.0f}};
  r.answer_prefix = {61, 62};
  r.thinking_budget = 9;
  const Collected a = run_one(plain, r), b = run_one(spec, r);
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(b.tokens.size(), 40u);
  EXPECT_EQ(b.tokens[9], 60);
  EXPECT_EQ(b.tokens[10], 61);
  EXPECT_GT(b.finished.accepted_tokens, 0);
}

TEST(Speculative, ContextEndAndBatchMixesMatchPlainRuns) {
  // A context of 50 ends generation inside what would be a round.
  FakeEngine plain(64, 50), spec(64, 50);
  spec.max_drafts = 5;
  const std::vector<int32_t> p1 = {0, 4, 4, 4, 9, 1 + 2};
  EXPECT_EQ(run_one(spec, greedy_request(p1, 0)).tokens, run_one(plain, greedy_request(p1, 0)).tokens);

  // Mixed batch: greedy requests with and without drafts accepted, a long prefill, a sampled
  // request; every greedy output equals its solo plain run.
  FakeEngine solo, mixed;
  install_mismatching_drafter(mixed, 5, 2);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 5; ++i) reqs.push_back(greedy_request({0, int32_t(10 + i), int32_t(3 * i % 7)}, 30 + 11 * i));
  reqs.push_back(greedy_request(std::vector<int32_t>(300, 5), 20));   // chunked prefill beside decodes
  GenerationRequest sampled = greedy_request({0, 33}, 25);
  sampled.sampling.temperature = 0.8f;
  sampled.sampling.seed = 7;
  reqs.push_back(sampled);
  SchedulerOptions o = always_draft();
  o.step_token_budget = 64;
  Scheduler s(mixed, o);
  std::vector<std::shared_ptr<Generation>> gens;
  for (const auto& r : reqs) gens.push_back(s.submit(r).value());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Collected c = collect(*gens[i]);
    if (reqs[i].sampling.greedy()) EXPECT_EQ(c.tokens, run_one(solo, reqs[i]).tokens) << "request " << i;
    else EXPECT_EQ(c.tokens.size(), 25u);
  }
  EXPECT_GT(s.stats().max_batch, 1u);
}

TEST(Speculative, CancelAndPrefixReuseAfterVerifyRounds) {
  FakeEngine plain, spec;
  install_mismatching_drafter(spec, 5, 6);
  spec.step_delay = 1ms;
  Scheduler s(spec, always_draft());
  const std::vector<int32_t> prompt = {0, 6, 6};
  auto first = collect(*s.submit(greedy_request(prompt, 31)).value());
  // A follow-up that extends prompt + output reuses the cached state, which must be exactly
  // the committed tokens.
  std::vector<int32_t> follow = prompt;
  follow.insert(follow.end(), first.tokens.begin(), first.tokens.end());
  follow.push_back(12);
  const Collected c = collect(*s.submit(greedy_request(follow, 20)).value());
  EXPECT_GT(c.finished.cached_tokens, 0);
  EXPECT_EQ(c.tokens, run_one(plain, greedy_request(follow, 20)).tokens);
  // Cancelled mid-generation: finishes as cancelled, and the slot is reused.
  auto g = s.submit(greedy_request(prompt, 0)).value();
  for (int i = 0; i < 20; ++i) (void)g->next(50ms);
  g->cancel();
  EXPECT_EQ(collect(*g).finished.finish, FinishReason::cancelled);
  EXPECT_EQ(collect(*s.submit(greedy_request(prompt, 5)).value()).tokens,
            run_one(plain, greedy_request(prompt, 5)).tokens);
}

// Adaptive drafting: a drafter that is never right stops being run (but for probes that back
// off), one
// that is always right keeps running, and the output is the plain one either way.
TEST(Speculative, AdaptiveDraftingStopsWhenItDoesNotPay) {
  FakeEngine plain;
  const std::vector<int32_t> prompt = {0, 5, 9, 3};
  const Collected expected = run_one(plain, greedy_request(prompt, 200));
  FakeEngine wrong, right;
  install_mismatching_drafter(wrong, 5, 1);
  right.max_drafts = 5;
  // A verify step costs 4x a plain one: worth it at 6 tokens per round, not at 1.
  for (FakeEngine* e : {&wrong, &right}) {
    e->step_delay = 1ms;
    e->verify_delay = 3ms;
  }
  SchedulerOptions adaptive;
  const Collected w = run_one(wrong, greedy_request(prompt, 200), adaptive);
  const Collected r = run_one(right, greedy_request(prompt, 200), adaptive);
  EXPECT_EQ(w.tokens, expected.tokens);
  EXPECT_EQ(r.tokens, expected.tokens);
  // Of ~200 decode steps: the first measuring rounds, then probes after 16, 32, 64, 128 steps.
  EXPECT_LT(w.finished.spec_rounds, 15);
  EXPECT_GT(r.finished.accepted_tokens, 120);
  // A verify step costs the same at any width here: a drafter always right drafts the most.
  EXPECT_GT(double(r.finished.drafted_tokens) / double(r.finished.spec_rounds), 4.5);
}

// Adaptive draft length (runtime/draft_planner.h): when each draft adds to the verify cost and
// drafts are accepted 60 % of the time, rounds of about 2 drafts emit the most per second
// (plain 2 ms per token; a round of k drafts 2 + 0.5 k ms for 1 + 0.6 + ... + 0.6^k tokens), so
// the scheduler drafts fewer than the drafter's 5 per round, and the output stays the plain one.
TEST(Speculative, AdaptiveDraftLengthFollowsVerifyCostAndAcceptance) {
  FakeEngine plain;
  const std::vector<int32_t> prompt = {0, 5, 9, 3};
  const Collected expected = run_one(plain, greedy_request(prompt, 200));
  FakeEngine spec;
  spec.max_drafts = 5;
  spec.step_delay = 2ms;
  spec.verify_delay_per_draft = 500us;
  // Each draft slot is wrong 40 % of the time, by a hash of the position and the slot.
  spec.draft_logits = [&spec](const std::vector<int32_t>& history, int slot, float* z) {
    spec.fill_logits(history, z);
    const uint64_t h = (uint64_t(history.size()) * 0x9e3779b97f4a7c15ull) ^ (uint64_t(slot) * 0xbf58476d1ce4e5b9ull);
    if ((h >> 40) % 10 < 4) {
      int32_t best = 0;
      for (int64_t v = 1; v < spec.config().vocab_size; ++v)
        if (z[v] > z[best]) best = int32_t(v);
      z[(best + 1) % spec.config().vocab_size] = z[best] + 1.0f;
    }
  };
  const Collected c = run_one(spec, greedy_request(prompt, 200), SchedulerOptions{});
  EXPECT_EQ(c.tokens, expected.tokens);
  ASSERT_GT(c.finished.spec_rounds, 20);
  EXPECT_GT(c.finished.accepted_tokens, 0);
  EXPECT_LT(double(c.finished.drafted_tokens) / double(c.finished.spec_rounds), 4.0);
}

// ---- The lossless rule (addendum §A5.2) ----

// Pearson's chi-square of observed counts against probabilities p (entries with p = 0 must not
// be observed at all).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double x = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = p[i] * n;
    x += (counts[i] - e) * (counts[i] - e) / e;
  }
  return x;
}

// softmax(l / T) restricted to the top k, renormalised (the warping of sampler.h step 3).
std::vector<double> target_distribution(const std::vector<float>& l, float t, int top_k) {
  std::vector<double> p(l.size());
  std::vector<size_t> order(l.size());
  for (size_t i = 0; i < l.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return l[a] > l[b]; });
  double sum = 0;
  for (size_t r = 0; r < l.size(); ++r) {
    if (top_k > 0 && int(r) >= top_k) break;
    p[order[r]] = std::exp(double(l[order[r]]) / t);
    sum += p[order[r]];
  }
  for (double& x : p) x /= sum;
  return p;
}

TEST(Speculative, VerifiedTokensFollowTheTargetDistribution) {
  // 8 tokens; the drafter's distribution is far from the target's (its favourite is the
  // target's least likely; top-3 sets {6, 0, 2} and {0, 1, 4} share one token). 99.99 % quantile of chi-square with 7 degrees of freedom: 29.9.
  const std::vector<float> target = {2.0f, 1.5f, 0.3f, -0.5f, 1.0f, 0.0f, -1.0f, 0.7f};
  const std::vector<float> drafter = {1.0f, 0.0f, 0.8f, 0.5f, -2.0f, 0.2f, 2.5f, 0.0f};
  for (int top_k : {0, 3}) {
    SCOPED_TRACE(top_k);
    SamplingParams sp;
    sp.temperature = 0.9f;
    sp.top_k = top_k;
    sp.seed = 42;
    Sampler sampler(sp, {});
    const int n = 40000;
    std::vector<int> verified(8, 0), drafted(8, 0);
    std::vector<float> q(8), row(8);
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
      const int32_t d = sampler.draft(drafter, q);
      drafted[size_t(d)]++;
      row = target;
      bool ok = false;
      verified[size_t(sampler.verify(row, d, q, &ok).token)]++;
      accepted += ok;
    }
    const std::vector<double> p = target_distribution(target, 0.9f, top_k);
    EXPECT_LT(chi_square(verified, p, n), 29.9);
    // The drafts alone are far from p: the test can tell the distributions apart.
    std::vector<int> shown = drafted;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] == 0) shown[i] = 0;
    EXPECT_GT(chi_square(shown, p, n), 1000.0);
    EXPECT_GT(accepted, n / 10);
    EXPECT_LT(accepted, n * 9 / 10);
  }
}

// The same through the scheduler: the second output token is verified against a drafter whose
// distribution differs from the target's; its distribution over many seeds must be the
// target's (computed exactly from the fake engine's logits).
TEST(Speculative, SampledRequestsKeepTheTargetDistribution) {
  const int64_t V = 8;
  FakeEngine spec(V, 64, 7);
  spec.max_drafts = 2;
  spec.eos_bias = 0;
  spec.draft_logits = [](const std::vector<int32_t>& history, int slot, float* z) {
    for (int64_t v = 0; v < 8; ++v) z[v] = FakeEngine::logit_of(history, (v * 5 + 3) % 8) * 0.5f;
  };
  const std::vector<int32_t> prompt = {0, 3};
  const float temp = 1.0f;
  // Exact marginal of the 2nd token: sum over the 1st.
  std::vector<double> second(V, 0.0);
  {
    std::vector<float> l(V);
    std::vector<int32_t> h = prompt;
    spec.fill_logits(h, l.data());
    const auto p1 = target_distribution(l, temp, 0);
    for (int32_t t1 = 0; t1 < V; ++t1) {
      std::vector<int32_t> h2 = prompt;
      h2.push_back(t1);
      spec.fill_logits(h2, l.data());
      const auto p2 = target_distribution(l, temp, 0);
      for (int64_t t2 = 0; t2 < V; ++t2) second[size_t(t2)] += p1[size_t(t1)] * p2[size_t(t2)];
    }
  }
  SchedulerOptions o = always_draft();
  o.max_running = 16;
  o.max_queued = 4096;
  Scheduler s(spec, o);
  const int n = 3000;
  std::vector<std::shared_ptr<Generation>> gens;
  for (int i = 0; i < n; ++i) {
    GenerationRequest r;
    r.prompt = prompt;
    r.max_tokens = 3;
    r.ignore_eos = true;
    r.sampling.temperature = temp;
    r.sampling.seed = uint64_t(i + 1);
    gens.push_back(s.submit(r).value());
  }
  std::vector<int> counts(V, 0);
  for (auto& g : gens) {
    const Collected c = collect(*g);
    ASSERT_EQ(c.tokens.size(), 3u);
    counts[size_t(c.tokens[1])]++;
  }
  EXPECT_EQ(s.stats().drafted_tokens, uint64_t(n));   // one draft each: the 2nd token
  EXPECT_LT(chi_square(counts, second, n), 29.9);
}

}  // namespace
}  // namespace dsv4::runtime

#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <thread>

#include "runtime/fake_engine.h"
#include "runtime/generation_helpers.h"

namespace dsv4::runtime {
namespace {

using namespace std::chrono_literals;
using test::FakeEngine;

using test::collect;
using test::Collected;
using test::greedy_request;

std::shared_ptr<Generation> must(Result<std::shared_ptr<Generation>> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : std::make_shared<Generation>(0);
}

// The reference: the same greedy loop written directly against the engine.
std::vector<int32_t> direct_greedy(FakeEngine& e, std::vector<int32_t> prompt, int n) {
  auto seq = e.new_sequence();
  std::vector<float> logits(size_t(e.config().vocab_size));
  std::vector<int32_t> out;
  std::vector<int32_t> feed = prompt;
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(static_cast<Engine&>(e).step(*seq, feed, logits.data()).ok());
    int32_t best = 0;
    for (size_t v = 1; v < logits.size(); ++v)
      if (logits[v] > logits[size_t(best)]) best = int32_t(v);
    out.push_back(best);
    feed = {best};
  }
  return out;
}

TEST(Scheduler, SingleGreedyRequestMatchesADirectLoop) {
  FakeEngine engine;
  FakeEngine reference;
  Scheduler s(engine, {});
  auto g = s.submit(greedy_request({0, 5, 9, 3}, 12));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  auto c = collect(**g);
  EXPECT_EQ(c.tokens, direct_greedy(reference, {0, 5, 9, 3}, 12));
  EXPECT_EQ(c.finished.finish, FinishReason::length);
  EXPECT_EQ(c.finished.prompt_tokens, 4);
  EXPECT_EQ(c.finished.generated_tokens, 12);
}

// A request's sequence is sized up front for every position it may reach (prompt + max_tokens,
// or the whole context without a limit; at most 65,536 output tokens ahead), so its decode steps
// never grow the state.
TEST(Scheduler, ReservesTheSequenceForTheWholeRequest) {
  FakeEngine engine(64, 512);
  Scheduler s(engine, {});
  auto g = s.submit(greedy_request({0, 5, 9, 3}, 12));
  ASSERT_TRUE(g.ok());
  collect(**g);
  EXPECT_EQ(engine.last_reserve.load(), 16);
  auto unlimited = s.submit(greedy_request({7, 8}, 0));
  ASSERT_TRUE(unlimited.ok());
  collect(**unlimited);
  EXPECT_EQ(engine.last_reserve.load(), 512);

  FakeEngine long_context(64, 1 << 20);
  long_context.eos_bias = 100.0f;   // ends at the first token
  Scheduler s2(long_context, {});
  auto capped = s2.submit(greedy_request({7, 8, 9}, 100000));
  ASSERT_TRUE(capped.ok());
  collect(**capped);
  EXPECT_EQ(long_context.last_reserve.load(), 3 + 65536);
}

TEST(Scheduler, BatchedOutputsEqualSequentialOnesAndDecodeTogether) {
  FakeEngine engine;
  engine.step_delay = 1ms;
  FakeEngine reference;
  SchedulerOptions o;
  o.max_running = 16;
  o.step_token_budget = 64;  // prompts of 40 tokens: prefill is chunked across steps
  o.cache_bytes = 0;
  Scheduler s(engine, o);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 16; ++i) {
    std::vector<int32_t> p = {0};
    for (int k = 0; k < 39; ++k) p.push_back(2 + (i * 7 + k * 3) % 60);
    prompts.push_back(p);
  }
  std::vector<std::shared_ptr<Generation>> gens;
  for (auto& p : prompts) {
    auto g = s.submit(greedy_request(p, 20));
    ASSERT_TRUE(g.ok());
    gens.push_back(*g);
  }
  for (size_t i = 0; i < gens.size(); ++i) {
    auto c = collect(*gens[i]);
    EXPECT_EQ(c.tokens, direct_greedy(reference, prompts[i], 20)) << "request " << i;
  }
  std::lock_guard<std::mutex> lock(engine.mu);
  int widest = 0;
  for (int b : engine.batch_sizes) widest = std::max(widest, b);
  EXPECT_GE(widest, 8) << "decoding sequences were not batched";
  for (int64_t t : engine.tokens_per_step) EXPECT_LE(t, 64);
  EXPECT_GE(s.stats().max_batch, 8u);
}

TEST(Scheduler, LongPrefillIsChunkedWhileOthersKeepDecoding) {
  FakeEngine engine(64, 4096);
  SchedulerOptions o;
  o.step_token_budget = 32;
  o.cache_bytes = 0;
  Scheduler s(engine, o);
  auto a = s.submit(greedy_request({0, 4, 4}, 200));
  ASSERT_TRUE(a.ok());
  // Wait for the first request to start decoding.
  auto first = (*a)->next(2000ms);
  ASSERT_TRUE(first && first->kind == GenerationEvent::Kind::token);
  auto req = greedy_request(std::vector<int32_t>(1000, 7), 3);
  req.report_prefill_progress = true;
  auto b = s.submit(req);
  ASSERT_TRUE(b.ok());
  auto cb = collect(**b);
  EXPECT_EQ(cb.tokens.size(), 3u);
  EXPECT_GE(cb.progress_events, 1000 / 32 - 1);
  collect(**a);
  std::lock_guard<std::mutex> lock(engine.mu);
  for (int64_t t : engine.tokens_per_step) EXPECT_LE(t, 32);
}

TEST(Scheduler, SeededSamplingIsReproducibleAlongsideOtherRequests) {
  FakeEngine engine;
  Scheduler s(engine, {});
  GenerationRequest r;
  r.prompt = {0, 3, 3, 8};
  r.sampling.seed = 1234;
  r.sampling.temperature = 1.0f;
  r.max_tokens = 30;
  auto alone = collect(*must(s.submit(r)));
  auto other = s.submit(greedy_request({0, 9}, 30));
  auto again = collect(*must(s.submit(r)));
  collect(**other);
  EXPECT_EQ(alone.tokens, again.tokens);
  r.sampling.seed = 99;
  auto different = collect(*must(s.submit(r)));
  EXPECT_NE(alone.tokens, different.tokens);
}

TEST(Scheduler, StopsOnEosAndStopTokenIdsWithoutEmittingThem) {
  FakeEngine engine;
  engine.eos_bias = 100.0f;  // EOS always wins
  Scheduler s(engine, {});
  auto c = collect(*must(s.submit(greedy_request({0, 2}, 10))));
  EXPECT_TRUE(c.tokens.empty());
  EXPECT_EQ(c.finished.finish, FinishReason::stop);
  EXPECT_EQ(c.finished.stop_token, std::optional<int32_t>(1));
  EXPECT_EQ(c.finished.generated_tokens, 1);

  FakeEngine e2;
  FakeEngine ref;
  Scheduler s2(e2, {});
  auto expected = direct_greedy(ref, {0, 2}, 10);
  auto r = greedy_request({0, 2}, 10);
  r.stop_token_ids = {expected[3]};
  auto c2 = collect(*must(s2.submit(r)));
  auto first_stop = std::find(expected.begin(), expected.end(), expected[3]) - expected.begin();
  EXPECT_EQ(c2.tokens, std::vector<int32_t>(expected.begin(), expected.begin() + first_stop));
  EXPECT_EQ(c2.finished.finish, FinishReason::stop);
}

TEST(Scheduler, IgnoreEosRunsToMaxTokens) {
  FakeEngine engine;
  engine.eos_bias = 100.0f;
  Scheduler s(engine, {});
  auto r = greedy_request({0, 2}, 5);
  r.ignore_eos = true;
  auto c = collect(*must(s.submit(r)));
  EXPECT_EQ(c.tokens, std::vector<int32_t>(5, 1));
  EXPECT_EQ(c.finished.finish, FinishReason::length);
}

TEST(Scheduler, RejectsBadRequests) {
  FakeEngine engine(64, 100);
  Scheduler s(engine, {});
  EXPECT_EQ(s.submit(greedy_request({}, 1)).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(s.submit(greedy_request({0, 64}, 1)).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(s.submit(greedy_request({0, -1}, 1)).status().code(), StatusCode::invalid_argument);
  auto too_long = s.submit(greedy_request(std::vector<int32_t>(100, 3), 1));
  EXPECT_EQ(too_long.status().code(), StatusCode::out_of_range);
  EXPECT_NE(too_long.status().message().find("100"), std::string::npos);
  auto r = greedy_request({0, 1}, 1);
  r.sampling.top_p = 2;
  EXPECT_EQ(s.submit(r).status().code(), StatusCode::invalid_argument);
  r = greedy_request({0, 1}, 1);
  r.sampling.logit_bias = {{64, 1.0f}};   // the vocabulary is [0, 64)
  auto bias = s.submit(r);
  EXPECT_EQ(bias.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bias.status().message().find("'logit_bias' token id 64"), std::string::npos);
}

TEST(Scheduler, GenerationEndsWhenTheContextIsFull) {
  FakeEngine engine(64, 20);
  Scheduler s(engine, {});
  auto c = collect(*must(s.submit(greedy_request(std::vector<int32_t>(15, 3), 0))));
  EXPECT_EQ(c.finished.finish, FinishReason::length);
  EXPECT_EQ(c.tokens.size(), 5u);  // 15 prompt + 5 generated = 20 = context
}

TEST(Scheduler, QueueCapRejectsWithResourceExhausted) {
  FakeEngine engine;
  engine.step_delay = 20ms;
  SchedulerOptions o;
  o.max_running = 1;
  o.max_queued = 2;
  Scheduler s(engine, o);
  std::vector<std::shared_ptr<Generation>> ok;
  int rejected = 0;
  for (int i = 0; i < 6; ++i) {
    auto g = s.submit(greedy_request({0, 2}, 50));
    if (g.ok()) ok.push_back(*g);
    else {
      EXPECT_EQ(g.status().code(), StatusCode::resource_exhausted);
      rejected++;
    }
  }
  EXPECT_LE(ok.size(), 3u);
  EXPECT_GE(rejected, 3);
  for (auto& g : ok) g->cancel();
  for (auto& g : ok) EXPECT_EQ(collect(*g).finished.finish, FinishReason::cancelled);
}

TEST(Scheduler, CancelFreesTheSlotForTheNextRequest) {
  FakeEngine engine;
  engine.step_delay = 2ms;
  SchedulerOptions o;
  o.max_running = 1;
  o.cache_bytes = 0;
  Scheduler s(engine, o);
  auto a = must(s.submit(greedy_request({0, 2}, 0)));  // would run until the context is full
  ASSERT_TRUE(a->next(2000ms).has_value());
  auto b = must(s.submit(greedy_request({0, 3}, 4)));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.stats().queued, 1);
  a->cancel();
  auto ca = collect(*a);
  EXPECT_EQ(ca.finished.finish, FinishReason::cancelled);
  auto cb = collect(*b);
  EXPECT_EQ(cb.tokens.size(), 4u);
  for (int i = 0; i < 100 && s.stats().running != 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(s.stats().running, 0);
}

TEST(Scheduler, PrefixReuseContinuesAFinishedSequence) {
  FakeEngine engine;
  FakeEngine reference;
  Scheduler s(engine, {});
  std::vector<int32_t> p1 = {0, 5, 6, 7};
  auto c1 = collect(*must(s.submit(greedy_request(p1, 6))));
  // The next turn: the whole first exchange plus new tokens.
  std::vector<int32_t> p2 = p1;
  p2.insert(p2.end(), c1.tokens.begin(), c1.tokens.end());
  p2.insert(p2.end(), {9, 10, 11});
  auto c2 = collect(*must(s.submit(greedy_request(p2, 6))));
  EXPECT_EQ(c2.tokens, direct_greedy(reference, p2, 6));
  // The cached sequence consumed the prompt and all sampled tokens but the last.
  EXPECT_EQ(c2.finished.cached_tokens, int64_t(p1.size() + c1.tokens.size() - 1));
  EXPECT_EQ(s.stats().prefix_hits, 1u);
  // A prompt that diverges from every cached sequence starts from scratch.
  auto c3 = collect(*must(s.submit(greedy_request({0, 5, 9}, 2))));
  EXPECT_EQ(c3.finished.cached_tokens, 0);
}

TEST(Scheduler, PrefixCacheRespectsItsMemoryCap) {
  FakeEngine engine;
  SchedulerOptions o;
  o.cache_bytes = 10 * sizeof(int32_t);  // FakeSequence: 4 bytes per consumed token
  Scheduler s(engine, o);
  std::vector<int32_t> small = {0, 5, 6};
  auto c1 = collect(*must(s.submit(greedy_request(small, 2))));
  std::vector<int32_t> p2 = small;
  p2.insert(p2.end(), c1.tokens.begin(), c1.tokens.end());
  p2.push_back(9);
  EXPECT_EQ(collect(*must(s.submit(greedy_request(p2, 2)))).finished.cached_tokens, 4);  // 3 + 2 - 1 fits
  std::vector<int32_t> big(30, 7);
  auto c3 = collect(*must(s.submit(greedy_request(big, 2))));
  big.insert(big.end(), c3.tokens.begin(), c3.tokens.end());
  big.push_back(9);
  EXPECT_EQ(collect(*must(s.submit(greedy_request(big, 2)))).finished.cached_tokens, 0);  // 31 tokens: too big
}

// An agent rewrites the end of the conversation (earlier reasoning dropped, a reminder
// inserted): the next prompt diverges inside the last assistant turn, and resumes from the
// snapshot taken where that turn opened.
TEST(Scheduler, PromptDivergingInsideTheLastTurnResumesAtItsMessageStart) {
  FakeEngine engine;
  FakeEngine reference;
  SchedulerOptions o;
  o.snapshot_interval = 0;
  Scheduler s(engine, o);
  // system (0..4), user (5..9), assistant (10..15), user (16..19)
  const std::vector<int32_t> p1 = {0, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 4, 20, 21, 22};
  auto r1 = greedy_request(p1, 4);
  r1.message_starts = {5, 10, 16};
  collect(*must(s.submit(r1)));
  std::vector<int32_t> p2(p1.begin(), p1.begin() + 12);   // the assistant turn rewritten at 12
  p2.insert(p2.end(), {30, 31, 4, 20, 21, 22, 40});
  auto r2 = greedy_request(p2, 6);
  r2.message_starts = {5, 10, 14};
  auto c2 = collect(*must(s.submit(r2)));
  EXPECT_EQ(c2.finished.cached_tokens, 10);
  EXPECT_EQ(c2.tokens, direct_greedy(reference, p2, 6));
  // The same prompt again resumes from its own last message start.
  auto c3 = collect(*must(s.submit(r2)));
  EXPECT_EQ(c3.finished.cached_tokens, 14);
  EXPECT_EQ(c3.tokens, c2.tokens);
}

// Inside a long message, snapshots every snapshot_interval tokens: a prompt sharing 45 tokens
// resumes at 40. Every chunk ends at a snapshot point.
TEST(Scheduler, SnapshotsEveryIntervalInsideAPrompt) {
  FakeEngine engine;
  FakeEngine reference;
  SchedulerOptions o;
  o.snapshot_interval = 8;
  o.step_token_budget = 64;
  Scheduler s(engine, o);
  std::vector<int32_t> p1 = {0};
  for (int k = 1; k < 60; ++k) p1.push_back(2 + k % 50);
  collect(*must(s.submit(greedy_request(p1, 2))));
  {
    std::lock_guard<std::mutex> lock(engine.mu);
    EXPECT_EQ(engine.tokens_per_step[0], 8);
  }
  std::vector<int32_t> p2(p1.begin(), p1.begin() + 45);
  p2.insert(p2.end(), {60, 61, 62});
  auto c2 = collect(*must(s.submit(greedy_request(p2, 5))));
  EXPECT_EQ(c2.finished.cached_tokens, 40);
  EXPECT_EQ(c2.tokens, direct_greedy(reference, p2, 5));
  EXPECT_EQ(s.stats().prefix_hits, 1u);
  EXPECT_GT(s.stats().prefix_snapshots, 7u);
}

// A short prompt admitted while a long one is being prefilled gets its share of the step at
// once: it is consumed in the next step, not after the long prompt.
TEST(Scheduler, ShortPromptIsNotQueuedBehindALongPrefill) {
  FakeEngine engine(64, 8192);
  engine.step_delay = 1ms;
  SchedulerOptions o;
  o.step_token_budget = 32;
  o.cache_bytes = 0;
  Scheduler s(engine, o);
  auto long_req = greedy_request(std::vector<int32_t>(4000, 7), 1);
  long_req.report_prefill_progress = true;
  auto a = must(s.submit(long_req));
  auto progress = a->next(2000ms);
  ASSERT_TRUE(progress && progress->kind == GenerationEvent::Kind::prefill_progress);
  const uint64_t before = s.stats().steps;
  auto b = must(s.submit(greedy_request({0, 5, 9, 3, 8, 8, 8, 8, 8, 8, 8, 8}, 1)));
  auto cb = collect(*b);
  EXPECT_EQ(cb.tokens.size(), 1u);
  EXPECT_LE(s.stats().steps - before, 3u) << "the short prompt waited behind the long prefill";
  auto ca = collect(*a);
  EXPECT_EQ(ca.finished.generated_tokens, 1);
}

TEST(Scheduler, ShutdownEndsEverythingWithAnErrorAndRefusesNewWork) {
  FakeEngine engine;
  engine.step_delay = 2ms;
  SchedulerOptions o;
  o.max_running = 1;
  Scheduler s(engine, o);
  auto running = must(s.submit(greedy_request({0, 2}, 0)));
  auto queued = must(s.submit(greedy_request({0, 3}, 0)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(running->next(2000ms).has_value());   // tokens generated
  s.shutdown();
  // Both end with an error that says why, not as if the answer were complete; the running one
  // counts what it generated.
  const Collected r = collect(*running), q = collect(*queued);
  for (const Collected* c : {&r, &q}) {
    EXPECT_EQ(c->finished.finish, FinishReason::error);
    EXPECT_EQ(c->finished.status.code(), StatusCode::resource_exhausted);
    EXPECT_NE(c->finished.status.message().find("shutting down"), std::string::npos);
  }
  EXPECT_GE(r.finished.generated_tokens, 3);
  EXPECT_EQ(q.finished.prompt_tokens, 2);
  EXPECT_EQ(s.submit(greedy_request({0, 2}, 1)).status().code(), StatusCode::resource_exhausted);
  s.shutdown();  // idempotent
}

TEST(Scheduler, EngineErrorFailsOnlyTheRequestAtFault) {
  FakeEngine engine;
  engine.poison_token = 13;
  engine.step_delay = 1ms;
  Scheduler s(engine, {});
  auto good = must(s.submit(greedy_request({0, 2, 3}, 10)));
  auto bad = must(s.submit(greedy_request({0, 13}, 10)));
  auto cb = collect(*bad);
  EXPECT_EQ(cb.finished.finish, FinishReason::error);
  EXPECT_FALSE(cb.finished.status.ok());
  auto cg = collect(*good);
  EXPECT_EQ(cg.finished.finish, FinishReason::length);
  EXPECT_EQ(cg.tokens.size(), 10u);
}

TEST(Scheduler, DestructionFinishesPendingRequests) {
  FakeEngine engine;
  engine.step_delay = 5ms;
  std::shared_ptr<Generation> g;
  {
    Scheduler s(engine, {});
    g = must(s.submit(greedy_request({0, 2}, 0)));
  }
  auto c = collect(*g);
  EXPECT_EQ(c.finished.finish, FinishReason::error);
}


std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(Scheduler, ForcedAnswerPrefixOpensTheOutput) {
  FakeEngine engine, reference;
  Scheduler s(engine, {});
  const std::vector<int32_t> prompt = {0, 5, 9, 3}, prefix = {40, 41, 42};
  auto req = greedy_request(prompt, 8);
  req.answer_prefix = prefix;
  auto c = collect(*must(s.submit(req)));
  // The prefix is output as if sampled, and the model continues from it.
  EXPECT_EQ(c.tokens, concat(prefix, direct_greedy(reference, concat(prompt, prefix), 5)));
  EXPECT_EQ(c.finished.generated_tokens, 8);
  EXPECT_EQ(c.finished.prompt_tokens, 4);
  // A prefix longer than max_tokens is cut there.
  req.max_tokens = 2;
  c = collect(*must(s.submit(req)));
  EXPECT_EQ(c.tokens, (std::vector<int32_t>{40, 41}));
  EXPECT_EQ(c.finished.finish, FinishReason::length);
}

TEST(Scheduler, ForcedAnswerPrefixFollowsTheAnswerStartToken) {
  FakeEngine engine, reference;
  Scheduler s(engine, {});
  const std::vector<int32_t> prompt = {0, 7, 7, 2};
  const std::vector<int32_t> free_run = direct_greedy(reference, prompt, 6);
  // Whatever the model emits third plays the part of </think>.
  const int32_t start = free_run[2];
  size_t first = 0;
  while (free_run[first] != start) ++first;
  const std::vector<int32_t> before(free_run.begin(), free_run.begin() + first + 1), prefix = {50, 51};
  auto req = greedy_request(prompt, 12);
  req.answer_start_token = start;
  req.answer_prefix = prefix;
  auto c = collect(*must(s.submit(req)));
  const auto head = concat(before, prefix);
  const size_t rest = 12 - head.size();
  EXPECT_EQ(c.tokens, concat(head, direct_greedy(reference, concat(prompt, head), int(rest))));
  EXPECT_EQ(c.finished.generated_tokens, 12);
}

TEST(Scheduler, ThinkingBudgetForcesTheAnswerStart) {
  FakeEngine engine, reference;
  Scheduler s(engine, {});
  const std::vector<int32_t> prompt = {0, 3, 2, 8};
  auto req = greedy_request(prompt, 10);
  req.answer_start_token = 60;
  req.banned_tokens = {60};  // the model never ends its reasoning on its own
  req.answer_prefix = {61};
  req.thinking_budget = 4;
  auto c = collect(*must(s.submit(req)));
  ASSERT_EQ(c.tokens.size(), 10u);
  EXPECT_EQ(c.tokens[4], 60);
  EXPECT_EQ(c.tokens[5], 61);
  for (size_t i = 0; i < 4; ++i) EXPECT_NE(c.tokens[i], 60);
  // Without a start token a budget has nothing to force.
  req.answer_start_token = -1;
  EXPECT_EQ(s.submit(req).status().code(), StatusCode::invalid_argument);
}

TEST(Scheduler, BannedTokensAreNeverSampled) {
  FakeEngine engine, reference;
  Scheduler s(engine, {});
  const std::vector<int32_t> prompt = {0, 9, 9};
  const std::vector<int32_t> free_run = direct_greedy(reference, prompt, 10);
  auto req = greedy_request(prompt, 10);
  req.banned_tokens = {free_run[0], free_run[1]};
  auto c = collect(*must(s.submit(req)));
  ASSERT_EQ(c.tokens.size(), 10u);
  for (int32_t t : c.tokens) EXPECT_TRUE(t != free_run[0] && t != free_run[1]) << t;
  req.banned_tokens = {64};
  EXPECT_EQ(s.submit(req).status().code(), StatusCode::invalid_argument);
}

}  // namespace
}  // namespace dsv4::runtime

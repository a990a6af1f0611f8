// A model whose logits are not finite (NaN/Inf weights, an overflow) stops the request with an
// error; it never samples from them (issue #15: NaN weights printed token 0 forever).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "eval/nan_weights.h"
#include "eval/quiet_synth_options.h"
#include "io/test_tmp_dir.h"
#include "runtime/engine.h"
#include "runtime/fake_engine.h"
#include "runtime/generation_helpers.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"

namespace dsv4::runtime {
namespace {

using namespace std::chrono_literals;

TEST(CheckLogitsFinite, NamesTheFirstBadLogit) {
  std::vector<float> row(100, 0.5f);
  EXPECT_TRUE(check_logits_finite(row).ok());
  row[42] = std::numeric_limits<float>::quiet_NaN();
  row[77] = std::numeric_limits<float>::infinity();
  Status s = check_logits_finite(row);
  EXPECT_EQ(s.code(), StatusCode::corrupt_data);
  EXPECT_NE(s.message().find("non-finite logit (nan for token 42)"), std::string::npos) << s.message();
  row[42] = 0;
  EXPECT_NE(check_logits_finite(row).message().find("inf for token 77"), std::string::npos);
}

// Reads a generation to its end: the tokens it emitted and its finished event.
std::pair<int, GenerationEvent> drain(Generation& g) {
  int tokens = 0;
  for (int i = 0; i < 2000; ++i) {
    auto e = g.next(10ms);
    if (!e) continue;
    if (e->kind == GenerationEvent::Kind::token) ++tokens;
    if (e->kind == GenerationEvent::Kind::finished) return {tokens, *e};
  }
  ADD_FAILURE() << "generation did not finish";
  return {tokens, {}};
}


TEST(Scheduler, NonFiniteLogitsEndTheRequestWithAnError) {
  test::FakeEngine engine;
  engine.bias.assign(64, 0.0f);
  engine.bias[9] = std::numeric_limits<float>::quiet_NaN();
  Scheduler s(engine, {});
  auto g = s.submit(test::greedy_request({0, 5}, 20));
  ASSERT_TRUE(g.ok());
  auto [tokens, end] = drain(**g);
  EXPECT_EQ(tokens, 0);
  EXPECT_EQ(end.finish, FinishReason::error);
  EXPECT_NE(end.status.message().find("non-finite logit"), std::string::npos) << end.status.to_string();
  // The scheduler goes on serving once the model is sound again.
  engine.bias[9] = 0;
  auto ok = s.submit(test::greedy_request({0, 5}, 4));
  ASSERT_TRUE(ok.ok());
  auto [n, fine] = drain(**ok);
  EXPECT_EQ(n, 4);
  EXPECT_EQ(fine.finish, FinishReason::length);
}

// The real engine on a synthetic checkpoint whose final norm is NaN.
TEST(Scheduler, NaNWeightsInACheckpointStopTheRequest) {
  test::TempDir dir;
  eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny);
  o.layers = 1;
  o.experts = 4;
  ASSERT_TRUE(eval::synth_checkpoint(o, dir.path()).ok());
  ASSERT_TRUE(test::write_nan_weights(dir.path(), "norm.weight").ok());
  auto engine = Engine::load(dir.path(), {});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  Scheduler s(**engine, {});
  auto g = s.submit(test::greedy_request({0, 5, 9}, 8));
  ASSERT_TRUE(g.ok());
  auto [tokens, end] = drain(**g);
  EXPECT_EQ(tokens, 0);
  EXPECT_EQ(end.finish, FinishReason::error);
  EXPECT_EQ(end.status.code(), StatusCode::corrupt_data);
  EXPECT_NE(end.status.message().find("non-finite logit"), std::string::npos) << end.status.to_string();
}

}  // namespace
}  // namespace dsv4::runtime

#include "runtime/draft_planner.h"

#include <gtest/gtest.h>

namespace dsv4::runtime {
namespace {

TEST(DraftPlanner, CostsAreMeasuredOrOnTheLineThroughTheNearestMeasured) {
  DraftPlanner p(5);
  EXPECT_FALSE(p.ready());
  p.record(0, 1.0);
  EXPECT_FALSE(p.ready());
  p.record(5, 3.5);
  ASSERT_TRUE(p.ready());
  EXPECT_DOUBLE_EQ(p.cost(0), 1.0);
  EXPECT_DOUBLE_EQ(p.cost(5), 3.5);
  EXPECT_DOUBLE_EQ(p.cost(2), 2.0);   // between 0 and 5
  p.record(2, 1.5);
  EXPECT_DOUBLE_EQ(p.cost(2), 1.5);
  EXPECT_DOUBLE_EQ(p.cost(1), 1.25);  // between 0 and 2
  EXPECT_DOUBLE_EQ(p.cost(4), 2.83333333333333333);  // between 2 and 5
  // A moving average: a new measure moves the cost a fifth of the way.
  p.record(2, 2.5);
  EXPECT_DOUBLE_EQ(p.cost(2), 1.7);
}

TEST(DraftPlanner, PastTheLastMeasuredCountTheSlopeContinues) {
  DraftPlanner p(6);
  p.record(0, 1.0);
  p.record(1, 1.2);
  EXPECT_DOUBLE_EQ(p.cost(6), 2.2);
  p.record(3, 2.0);
  EXPECT_DOUBLE_EQ(p.cost(5), 2.8);   // the slope of 1 and 3: 0.4 per draft
}

TEST(DraftPlanner, TokensPerRoundFollowTheGeometricModel) {
  EXPECT_DOUBLE_EQ(DraftPlanner::tokens_per_round(3, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(DraftPlanner::tokens_per_round(3, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(DraftPlanner::tokens_per_round(2, 0.5), 1.75);
}

TEST(DraftPlanner, CheapVerifyTakesTheLongestRound) {
  // A GPU-like machine: 6 positions cost little more than 1.
  DraftPlanner p(5);
  p.record(0, 1.0);
  p.record(5, 1.25);
  EXPECT_EQ(p.best(0.7), 5);
  EXPECT_TRUE(p.pays(5, 0.7));
  EXPECT_EQ(p.best(0.2), 1);   // few accepted: the extra positions are not worth their cost
}

TEST(DraftPlanner, CostlyVerifyShortensTheRoundAtMiddlingAcceptance) {
  // Issue #14's 2-core figures: a plain step 149 ms, draft + verify of 2..6 positions.
  DraftPlanner p(5);
  p.record(0, 0.149);
  const double round[] = {0.097 + 0.199, 0.097 + 0.251, 0.097 + 0.292, 0.097 + 0.379, 0.097 + 0.414};
  for (int k = 1; k <= 5; ++k) p.record(k, round[k - 1]);
  EXPECT_EQ(p.best(0.95), 5);
  const int k = p.best(0.8);
  EXPECT_GT(k, 1);
  EXPECT_LT(k, 5);
  // Shorter than the longest, and faster than it by the model.
  EXPECT_GT(DraftPlanner::tokens_per_round(k, 0.8) / p.cost(k), DraftPlanner::tokens_per_round(5, 0.8) / p.cost(5));
  EXPECT_TRUE(p.pays(k, 0.8));
  EXPECT_FALSE(p.pays(p.best(0.3), 0.3));   // rarely right: plain decoding is faster
}

TEST(AcceptanceRate, CountsAcceptedDraftsAndTheRejectionAsTrials) {
  AcceptanceRate r;
  EXPECT_DOUBLE_EQ(r.rate(), 0.5);
  for (int i = 0; i < 60; ++i) r.record(3, true);   // 3 of 4 trials per round
  EXPECT_NEAR(r.rate(), 0.75, 1e-6);
  for (int i = 0; i < 60; ++i) r.record(5, false);  // every draft accepted
  EXPECT_NEAR(r.rate(), 1.0, 1e-6);
  for (int i = 0; i < 60; ++i) r.record(0, true);
  EXPECT_NEAR(r.rate(), 0.0, 1e-6);
}

}  // namespace
}  // namespace dsv4::runtime

#include "model/hc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace dsv4::model {

TEST(Sinkhorn, ColumnsSumToOneAfterTheFinalColumnStep) {
  std::vector<float> c = {0.3f, -1.0f, 2.0f, 0.0f, 1.5f, 0.2f, -0.7f, 0.9f,
                          -2.0f, 0.4f, 0.1f, 1.1f, 0.0f, 0.0f, 3.0f, -0.5f};
  sinkhorn(c.data(), 4, 20, 1e-6f);
  for (int k = 0; k < 4; ++k) {
    float s = 0;
    for (int j = 0; j < 4; ++j) s += c[size_t(j * 4 + k)];
    EXPECT_NEAR(s, 1.0f, 1e-5f);
  }
  for (int j = 0; j < 4; ++j) {
    float s = 0;
    for (int k = 0; k < 4; ++k) s += c[size_t(j * 4 + k)];
    EXPECT_NEAR(s, 1.0f, 1e-3f);   // rows only approximately (spec §5.2.1)
  }
}

TEST(Sinkhorn, OneIterationIsRowSoftmaxPlusEpsThenColumnNorm) {
  std::vector<float> c = {0.0f, 1.0f, 2.0f, 3.0f};   // 2x2
  sinkhorn(c.data(), 2, 1, 0.0f);
  const double a = 1 / (1 + std::exp(1.0)), b = 1 - a;          // row 0 softmax
  const double e = 1 / (1 + std::exp(1.0)), f = 1 - e;          // row 1 softmax (same gaps)
  EXPECT_NEAR(c[0], a / (a + e), 1e-6);
  EXPECT_NEAR(c[1], b / (b + f), 1e-6);
}

TEST(HcPost, ColumnKOfCombWeightsTheInputs) {
  // Deliberately asymmetric comb: new stream k = post[k]·a + Σ_j comb[j][k]·R[j].
  HcParams p;
  p.n_hc = 2;
  p.dim = 1;
  const float a[1] = {10.0f};
  const float R[2] = {1.0f, 100.0f};
  const float post[2] = {0.5f, 0.0f};
  const float comb[4] = {1.0f, 0.0f,    // row j=0: to stream 0 only
                         0.25f, 0.75f}; // row j=1
  float out[2];
  hc_post(p, a, R, post, comb, out);
  EXPECT_EQ(out[0], 5.0f + 1.0f + 25.0f);
  EXPECT_EQ(out[1], 75.0f);
}

}  // namespace dsv4::model

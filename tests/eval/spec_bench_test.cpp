// `dsv4 bench --speculative` (eval/spec_bench.h) reports every figure, on both drafters.
#include "eval/spec_bench.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eval/quiet_synth_options.h"
#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::eval {
namespace {

void expect_complete(const SpecBenchReport& r, int block) {
  EXPECT_EQ(r.block, block);
  ASSERT_EQ(r.verify_ms.size(), size_t(block + 1));
  for (double ms : r.verify_ms) EXPECT_GT(ms, 0);
  EXPECT_GT(r.step_ms, 0);
  EXPECT_GT(r.draft_ms, 0);
  EXPECT_GT(r.plain_tok_s, 0);
  EXPECT_GT(r.own_tok_s, 0);
  EXPECT_GT(r.own_adaptive_tok_s, 0);
  ASSERT_EQ(r.at_length.size(), size_t(block + 1));
  for (int a = 0; a <= block; ++a) {
    const auto& f = r.at_length[size_t(a)];
    EXPECT_EQ(f.accepted, a);
    EXPECT_GT(f.tok_s, 0);
    EXPECT_GT(f.adaptive_tok_s, 0);
    EXPECT_TRUE(std::isfinite(f.speedup) && f.speedup > 0);
    // The implied speed-up grows with the accepted length, in proportion.
    EXPECT_NEAR(f.implied_speedup, double(a + 1) * r.at_length[0].implied_speedup, 1e-9);
  }
  const auto j = spec_bench_json(r);
  EXPECT_EQ(j["at_accepted_length"].size(), size_t(block + 1));
  EXPECT_NE(spec_bench_table(r).find("implied"), std::string::npos);
  EXPECT_NE(spec_bench_table(r).find("adaptive"), std::string::npos);
}

TEST(SpecBench, MtpDrafterOnTheTinyFixture) {
  SpecBenchOptions o;
  o.model_dir = test::fixture_dir("tiny") + "/checkpoint";
  o.context = 16;
  o.decode_tokens = 5;
  o.repetitions = 4;   // the step-cost phase reaches further than the decode runs
  auto r = run_spec_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->drafter, "MTP-1");
  expect_complete(*r, 1);
}

TEST(SpecBench, DsparkDrafterOnATiny0731Synthetic) {
  test::TempDir dir;
  ASSERT_TRUE(synth_checkpoint(test::quiet_synth_options(SynthPreset::tiny_0731), dir.path()).ok());
  SpecBenchOptions o;
  o.model_dir = dir.path();
  o.context = 16;
  o.decode_tokens = 12;
  o.repetitions = 2;
  auto r = run_spec_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_complete(*r, 5);
}

}  // namespace
}  // namespace dsv4::eval

// The engine on V4-shaped configs other than the shared fixtures' (spec §2.1: every dimension
// comes from config.json). Each case is a synthetic checkpoint with the fixture generator's kind
// of overrides; on each, the logits must not depend on how the prompt is split, and the plain C++
// kernels must give the SIMD kernels' logits bit for bit (a tail or tiling bug in a SIMD kernel on
// an unusual dimension shows up as a difference).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "eval/quiet_synth_options.h"
#include "io/test_tmp_dir.h"
#include "kernels/cpu/matmul.h"
#include "runtime/engine.h"
#include "runtime/split_invariance.h"

namespace dsv4::runtime {
namespace {

struct ShapeCase {
  const char* name;
  std::vector<std::string> set;   // eval::SynthOptions::set
  int64_t layers = 0;             // eval::SynthOptions::layers (0 = the tiny preset's 4)
};

const std::vector<ShapeCase>& shape_cases() {
  static const std::vector<ShapeCase> cases = {
      {"tiny", {}},
      {"tiny_c_shape", {"head_dim=512", "index_head_dim=128", "index_topk=24", "num_experts_per_tok=3"}},
      {"head_dim_192_rope_128", {"head_dim=192", "qk_rope_head_dim=128", "index_head_dim=128"}},
      {"eight_heads_four_groups", {"num_attention_heads=8", "o_groups=4"}},
      {"two_heads_one_group", {"num_attention_heads=2", "o_groups=1"}},
      {"hc_mult_2", {"hc_mult=2"}},
      {"hc_mult_8_sinkhorn_3", {"hc_mult=8", "hc_sinkhorn_iters=3"}},
      {"window_32", {"sliding_window=32"}},
      {"window_512", {"sliding_window=512"}},
      {"index_topk_4", {"index_topk=4"}},
      {"index_topk_512_eight_index_heads", {"index_topk=512", "index_n_heads=8"}},
      {"all_csa_no_hash", {"compress_ratios=[4,4,4,0]", "num_hash_layers=0"}, 3},
      {"all_hca_two_hash", {"compress_ratios=[128,128,128,0]", "num_hash_layers=2"}, 3},
      {"wide", {"hidden_size=384", "q_lora_rank=256", "o_lora_rank=384", "moe_intermediate_size=384"}},
      {"sixteen_experts_top6", {"n_routed_experts=16", "num_experts_per_tok=6"}},
      {"one_expert", {"n_routed_experts=1", "num_experts_per_tok=1"}},
      {"fp8_experts", {"expert_dtype=fp8"}},
      {"no_mtp", {"num_nextn_predict_layers=0", "compress_ratios=[0,4,128,4]"}},
      {"odd_vocab", {"vocab_size=1001"}},
      {"one_stream", {"hc_mult=1"}},
      {"window_4", {"sliding_window=4"}},
      {"one_head", {"num_attention_heads=1", "o_groups=1"}},
      {"one_index_head_topk_1", {"index_n_heads=1", "index_topk=1"}},
      {"one_layer", {"compress_ratios=[4,0]", "num_hash_layers=1"}, 1},
      {"head_dim_64_all_rope", {"head_dim=64", "qk_rope_head_dim=64", "index_head_dim=64"}},
      {"context_exactly_300", {"max_position_embeddings=300"}},
      {"no_swiglu_clamp_other_rope", {"swiglu_limit=0", "rope_scaling.factor=4", "rope_theta=50000"}},
  };
  return cases;
}

class ShapeSweep : public testing::TestWithParam<size_t> {};

TEST_P(ShapeSweep, SplitInvariantAndPlainKernelsAgree) {
  const ShapeCase& c = shape_cases()[GetParam()];
  test::TempDir dir;
  eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny);
  o.seed = 100 + GetParam();
  o.layers = c.layers;
  o.set = c.set;
  Status s = eval::synth_checkpoint(o, dir.path());
  ASSERT_TRUE(s.ok()) << s.to_string();

  // 300 tokens: the 128-token window wraps twice, HCA layers hold 2 entries, CSA layers 75.
  const kernels::RestoreMatmulImpl restore;
  auto simd = Engine::load(dir.path(), {});
  ASSERT_TRUE(simd.ok()) << simd.status().to_string();
  const auto tokens = test_tokens(300, (*simd)->config().vocab_size);
  const std::vector<float> fast = expect_split_invariance(**simd, tokens);
  for (float v : fast) ASSERT_TRUE(std::isfinite(v));

  ASSERT_TRUE(kernels::select_matmul_impl(kernels::MatmulImpl::generic));
  auto plain = Engine::load(dir.path(), {});
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  const int64_t V = (*plain)->config().vocab_size;
  auto seq = (*plain)->new_sequence();
  std::vector<float> logits(size_t(V), 0.f);
  // In chunks of 37 (prefill-sized GEMMs), then the last 4 tokens one by one (decode matvecs).
  const int64_t n = int64_t(tokens.size());
  for (int64_t p = 0; p < n;) {
    const int64_t len = p < n - 4 ? std::min<int64_t>(37, n - 4 - p) : 1;
    ASSERT_TRUE((*plain)->step(*seq, std::span(&tokens[size_t(p)], size_t(len)), logits.data()).ok());
    p += len;
    EXPECT_EQ(0, std::memcmp(logits.data(), &fast[size_t((p - 1) * V)], size_t(V) * 4)) << "position " << p - 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, ShapeSweep, testing::Range<size_t>(0, shape_cases().size()),
                         [](const testing::TestParamInfo<size_t>& info) { return std::string(shape_cases()[info.param].name); });

}  // namespace
}  // namespace dsv4::runtime

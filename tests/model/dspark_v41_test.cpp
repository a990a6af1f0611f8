// The V4.1 DSpark draft forward (v4.1 §7) on tiny-v41 synthetic checkpoints: the stages' own
// MoE, the taps at the target layers' inputs (§7.2), the rings that a prompt seeds from its last
// <= 128 positions with V4.1's window entries (§7.4: act_quant block 32 over all 512 dims), and a
// draft block's shapes. What V4.1 shares with V4 (the bank, the Markov loop, the confidence head)
// is tested on 0731 in dspark_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "eval/quiet_synth_options.h"
#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/quant_sim.h"
#include "kernels/cpu/rope.h"
#include "model/attention_v41.h"
#include "model/dspark.h"
#include "model/engram.h"
#include "model/forward.h"
#include "model/forward_v41.h"
#include "model/state.h"

namespace dsv4::model {
namespace {

std::unique_ptr<Model> synth_v41(const test::TempDir& dir, int64_t layers) {
  eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny_v41);
  o.layers = layers;
  o.seed = 41;
  if (!eval::synth_checkpoint(o, dir.path()).ok()) return nullptr;
  auto m = load_model(dir.path());
  return m.ok() ? std::move(*m) : nullptr;
}

bool same_bits(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  return true;
}

std::vector<int32_t> prompt_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(2 + (i * 37) % (vocab - 2));
  return t;
}

class DsparkV41 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    model_ = synth_v41(*dir_, 0);
  }
  static void TearDownTestSuite() {
    model_.reset();
    dir_.reset();
  }
  void SetUp() override { ASSERT_NE(model_, nullptr); }

  static const Model& m() { return *model_; }
  static const io::ModelConfig& cfg() { return model_->cfg; }
  static int64_t D() { return cfg().hidden_size; }
  static int64_t Dh() { return cfg().head_dim; }
  static int64_t W() { return cfg().sliding_window; }
  static int64_t width() { return dspark_tap_width(cfg()); }

  static std::vector<float> random_taps(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> t(size_t(n * width()));
    for (float& x : t) x = round_bf16(rng.normal());
    return t;
  }
  DsparkState absorbed(const float* taps, int64_t n) {
    DsparkState st = make_dspark_state(m());
    scratch_.begin_step();
    EXPECT_TRUE(dspark_absorb(m(), st, taps, n, scratch_).ok());
    return st;
  }
  // GEMM_fp8 of one row as v4.1 §4.3 defines it: act_quant in blocks of 32, the product, bf16.
  static std::vector<float> gemm_fp8(const kernels::WeightView& w, const float* x) {
    std::vector<float> xq(x, x + w.cols), y(size_t(w.rows));
    kernels::act_quant_fp8(xq.data(), w.cols, 32);
    kernels::matmul(w, xq.data(), 1, y.data());
    for (float& v : y) v = round_bf16(v);
    return y;
  }
  // mk_s(p) of one tap row straight from v4.1 §7.4: main_x = RMSNorm(GEMM_fp8(H, main_proj),
  // main_norm); mk = act_quant32(RoPE(RMSNorm(GEMM_fp8(main_x, wkv), kv_norm), p)) on all dims,
  // RoPE base rope_theta without YaRN (§4.5: m = 0).
  static std::vector<float> direct_mk(const float* tap, int64_t p, int64_t stage) {
    const DsparkWeights& d = m().w.dspark;
    const float eps = float(cfg().rms_norm_eps);
    std::vector<float> main_x = gemm_fp8(d.main_proj, tap);
    kernels::rms_norm(main_x.data(), d.main_norm.data(), D(), eps, main_x.data());
    const BlockWeights& b = d.stages[size_t(stage)];
    std::vector<float> kv = gemm_fp8(b.attn.wkv, main_x.data());
    kernels::rms_norm(kv.data(), b.attn.kv_norm.data(), Dh(), eps, kv.data());
    std::vector<float> cs(static_cast<size_t>(m().rope_plain.rope_dim));
    kernels::rope_angles(m().rope_plain, p, cs.data());
    kernels::rope_apply(kv.data(), Dh(), m().rope_plain.rope_dim, cs.data(), false);
    kernels::act_quant_fp8(kv.data(), Dh(), 32);
    return kv;
  }

  static inline std::unique_ptr<test::TempDir> dir_;
  static inline std::unique_ptr<Model> model_;
  Scratch scratch_;
};

// v4.1 §7.1, §7.3, §3.5: 3 stages at m = 0 with their own experts; taps from the config.
TEST_F(DsparkV41, WeightsStateAndTapShapes) {
  const ModelWeights& w = m().w;
  ASSERT_TRUE(w.has_dspark);
  EXPECT_EQ(cfg().dspark.target_layer_ids, (std::vector<int64_t>{37, 38, 39}));
  EXPECT_EQ(width(), 3 * D());
  EXPECT_EQ(w.dspark.main_proj.cols, 3 * D());
  ASSERT_EQ(w.dspark.stages.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    const BlockWeights& b = w.dspark.stages[s];
    EXPECT_EQ(b.layer, cfg().num_hidden_layers + int64_t(s));
    EXPECT_EQ(b.v41.ratio, 0);
    EXPECT_EQ(b.ffn.n_experts, cfg().v41.dspark_n_routed_experts);
    EXPECT_EQ(b.ffn.top_k, cfg().v41.dspark_num_experts_per_tok);
    EXPECT_EQ(b.ffn.route_norm_eps, 1e-20f);
  }
  EXPECT_NE(w.dspark.stages[0].ffn.n_experts, w.blocks[0].ffn.n_experts);   // tiny-v41: 4 against 8
  EXPECT_EQ(w.blocks[0].ffn.top_k, cfg().num_experts_per_tok);
  EXPECT_TRUE(w.dspark.head.lagged_pre);   // no hc_head (v4.1 §7.4)
  EXPECT_EQ(w.dspark.markov_w1.cols, cfg().dspark.markov_rank);
  EXPECT_EQ(int64_t(w.dspark.confidence_proj.size()), D() + cfg().dspark.markov_rank);
  const DsparkState st = make_dspark_state(m());
  EXPECT_EQ(st.stages, 3);
  EXPECT_EQ(st.window, 128);
  EXPECT_EQ(st.ring.size(), size_t(3 * 128 * Dh()));
}

// v4.1 §7.2: tap k is the bf16 mean of the streams ENTERING layer T[k] (after its Engram, before
// hc_mixes / hc_pre). On a 3-layer model T = [0, 1, 2]: the stack by hand, tapping before each
// block; layer 0's tap is the embedding itself (4 equal streams), which its output would not give.
TEST(DsparkV41Taps, TapsAreTheStreamMeanEnteringEachTappedLayer) {
  test::TempDir dir;
  const std::unique_ptr<Model> model = synth_v41(dir, 3);
  ASSERT_NE(model, nullptr);
  const Model& m = *model;
  const io::ModelConfig& c = m.cfg;
  ASSERT_EQ(c.dspark.target_layer_ids, (std::vector<int64_t>{0, 1, 2}));
  const int64_t n = 9, nh = c.hc_mult, D = c.hidden_size, width = dspark_tap_width(c), S = stream_width(c);
  const std::vector<int32_t> tokens = prompt_tokens(n, c.vocab_size);
  Scratch scratch;
  std::vector<float> out(size_t(n * S)), taps(size_t(n * width));
  {
    SequenceState seq = make_sequence_state(c);
    Batch batch;
    batch.add(&seq, tokens.data(), n, 0);
    scratch.begin_step();
    forward_streams(m, batch, out.data(), scratch, taps.data());
    std::vector<float> plain(out.size());
    SequenceState seq2 = make_sequence_state(c);
    Batch batch2;
    batch2.add(&seq2, tokens.data(), n, 0);
    scratch.begin_step();
    forward_streams(m, batch2, plain.data(), scratch);
    EXPECT_TRUE(same_bits(plain.data(), out.data(), int64_t(out.size()))) << "taps changed the target's streams";
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t d = 0; d < D; ++d)
      ASSERT_EQ(taps[size_t(r * width + d)], bf16_to_f32(m.w.embed[tokens[size_t(r)] * D + d]));

  // The stack by hand: Engram rows from the public hashing, then each block.
  SequenceState seq = make_sequence_state(c);
  Batch batch;
  batch.add(&seq, tokens.data(), n, 0);
  const EngramHasher& h = m.engram;
  const int64_t K = int64_t(h.layers.size()), cols = h.columns();
  std::vector<int64_t> hashes(size_t(K * n * cols));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = h.cmap[size_t(tokens[size_t(i)])];
  for (int64_t i = 0; i < n; ++i) {
    int32_t tok[8];
    engram_lookback(h, ids.data(), i, 0, seq.engram_history.data(), tok);
    for (int64_t k = 0; k < K; ++k) h.rows(k, tok, &hashes[size_t((k * n + i) * cols)]);
  }
  Arena sel_arena;
  V41Selection sel = make_v41_selection(c, n, sel_arena);
  std::vector<float> X(size_t(n * nh * D)), pre(size_t(n * nh));
  embed_rows(m, tokens.data(), n, X.data());
  identity_pre(c, n, pre.data());
  for (const BlockWeights& b : m.w.blocks) {
    SCOPED_TRACE(b.layer);
    scratch.begin_step();
    if (b.has_engram) engram_forward(m, b, &hashes[size_t(b.engram.index * n * cols)], n, X.data(), scratch);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t d = 0; d < D; ++d) {
        const float* x = &X[size_t(r * nh * D + d)];
        const float mean = round_bf16((((x[0] + x[D]) + x[2 * D]) + x[3 * D]) * 0.25f);
        ASSERT_EQ(taps[size_t(r * width + b.layer * D + d)], mean) << "row " << r << " dim " << d;
      }
    run_block_v41(m, b, batch, X.data(), pre.data(), scratch,
                  [&](const float* x, float* o) { attention_v41(m, b, batch, x, o, sel, scratch); });
  }
  for (int64_t r = 0; r < n; ++r) {
    ASSERT_TRUE(same_bits(&X[size_t(r * nh * D)], &out[size_t(r * S)], nh * D));
    ASSERT_TRUE(same_bits(&pre[size_t(r * nh)], &out[size_t(r * S + nh * D)], nh));
  }
}

// v4.1 §7.4: a prompt of S positions seeds the rings from its last min(S, 128) positions only,
// slot p mod W, each entry V4.1's window entry of main_x; the other slots stay empty. Absorbing in
// chunks (or one committed verify prefix at a time) gives the same bits.
TEST_F(DsparkV41, PrefillSeedsTheRingsFromTheLastWindow) {
  for (int64_t S : {1, 127, 128, 129, 300}) {
    SCOPED_TRACE(S);
    const std::vector<float> taps = random_taps(S, uint64_t(S));
    const DsparkState st = absorbed(taps.data(), S);
    EXPECT_EQ(st.pos, S);
    for (int64_t s = 0; s < st.stages; ++s)
      for (int64_t j = 0; j < W(); ++j) {
        const uint16_t* slot = st.slot(s, j);
        if (j >= S) {
          ASSERT_TRUE(std::all_of(slot, slot + Dh(), [](uint16_t v) { return v == 0; })) << "slot " << j;
          continue;
        }
        const int64_t p = j + (S - 1 - j) / W() * W();
        const std::vector<float> mk = direct_mk(&taps[size_t(p * width())], p, s);
        for (int64_t e = 0; e < Dh(); ++e)
          ASSERT_EQ(bf16_to_f32(slot[e]), mk[size_t(e)]) << "stage " << s << " slot " << j << " position " << p;
      }
    // Rows older than the last window never matter: absorbing only those gives the same rings.
    if (S > W()) {
      DsparkState tail = make_dspark_state(m());
      tail.pos = S - W();
      scratch_.begin_step();
      ASSERT_TRUE(dspark_absorb(m(), tail, &taps[size_t((S - W()) * width())], W(), scratch_).ok());
      EXPECT_TRUE(tail.ring == st.ring);
    }
    for (int64_t chunk : {1, 6}) {
      DsparkState st2 = make_dspark_state(m());
      for (int64_t p = 0; p < S; p += chunk) {
        scratch_.begin_step();
        ASSERT_TRUE(dspark_absorb(m(), st2, &taps[size_t(p * width())], std::min(chunk, S - p), scratch_).ok());
      }
      EXPECT_TRUE(st2.ring == st.ring) << "chunks of " << chunk;
    }
  }
}

// A real prompt's taps through the rings and a draft block: the shapes, finite and deterministic
// values, y bf16-valued (the collapse with the last stage's pre, v4.1 §7.4), the state only read,
// and the rows' logits distinct (each row at its own position).
TEST_F(DsparkV41, DraftBlockOfAPrompt) {
  const int64_t n = 20, G = cfg().dspark.block_size, V = cfg().vocab_size;
  ASSERT_EQ(G, 5);
  const std::vector<int32_t> tokens = prompt_tokens(n, V);
  SequenceState seq = make_sequence_state(cfg());
  Batch batch;
  batch.add(&seq, tokens.data(), n, 0);
  std::vector<float> X(size_t(n * stream_width(cfg()))), taps(size_t(n * width()));
  scratch_.begin_step();
  forward_streams(m(), batch, X.data(), scratch_, taps.data());
  const DsparkState st = absorbed(taps.data(), n);
  const DsparkState before = st;
  std::vector<float> base(size_t(G * V)), y(size_t(G * D())), base2(base.size()), y2(y.size());
  scratch_.begin_step();
  ASSERT_TRUE(dspark_draft_block(m(), st, 7, base.data(), y.data(), scratch_).ok());
  scratch_.begin_step();
  ASSERT_TRUE(dspark_draft_block(m(), st, 7, base2.data(), y2.data(), scratch_).ok());
  EXPECT_TRUE(same_bits(base.data(), base2.data(), G * V));
  EXPECT_TRUE(same_bits(y.data(), y2.data(), G * D()));
  EXPECT_TRUE(st.ring == before.ring);
  for (float v : base) ASSERT_TRUE(std::isfinite(v));
  for (float v : y) ASSERT_EQ(v, round_bf16(v));
  for (int64_t i = 1; i < G; ++i) EXPECT_FALSE(same_bits(base.data(), base.data() + i * V, V)) << "row " << i;
  // Another anchor changes every row (row 0 holds it; the others see it: no causal mask).
  scratch_.begin_step();
  ASSERT_TRUE(dspark_draft_block(m(), st, 8, base2.data(), y2.data(), scratch_).ok());
  for (int64_t i = 0; i < G; ++i) EXPECT_FALSE(same_bits(base.data() + i * V, base2.data() + i * V, V)) << "row " << i;
}

}  // namespace
}  // namespace dsv4::model

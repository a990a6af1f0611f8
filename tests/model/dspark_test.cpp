// The DSpark draft forward (addendum §A4) on a tiny checkpoint shaped like Flash-0731 (synth
// tiny-0731: 4 main layers, taps T = [1, 2, 3], 3 stages), with the conformance cases of §A8.2-A8.6
// that need no official reference outputs: the tap site, the ring semantics, the non-causal
// block, the Markov loop and the confidence head, checked against direct computations.
#include "model/dspark.h"

#include <gtest/gtest.h>
#include <omp.h>

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
#include "model/forward.h"
#include "model/state.h"
#include "test_paths.h"

namespace dsv4::model {
namespace {

class Dspark : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny_0731);
    o.seed = 731;
    ASSERT_TRUE(eval::synth_checkpoint(o, dir_->path()).ok());
    auto m = load_model(dir_->path());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(*m);
  }
  static void TearDownTestSuite() {
    model_.reset();
    dir_.reset();
  }
  void SetUp() override {
    ASSERT_NE(model_, nullptr);
    scratch_.begin_step();
  }

  static const Model& m() { return *model_; }
  static const io::ModelConfig& cfg() { return model_->cfg; }
  static int64_t D() { return cfg().hidden_size; }
  static int64_t Dh() { return cfg().head_dim; }
  static int64_t V() { return cfg().vocab_size; }
  static int64_t W() { return cfg().sliding_window; }
  static int64_t gamma() { return cfg().dspark.block_size; }
  static int64_t width() { return dspark_tap_width(cfg()); }

  // The target's streams and taps of a prompt from position 0.
  struct Prompt {
    std::vector<float> X, taps;
  };
  Prompt run_prompt(const std::vector<int32_t>& tokens) {
    const int64_t n = int64_t(tokens.size());
    SequenceState seq = make_sequence_state(cfg());
    Batch batch;
    batch.add(&seq, tokens.data(), n, 0);
    Prompt p;
    p.X.resize(size_t(n * cfg().hc_mult * D()));
    p.taps.resize(size_t(n * width()));
    scratch_.begin_step();
    forward_streams(m(), batch, p.X.data(), scratch_, p.taps.data());
    return p;
  }
  static std::vector<int32_t> prompt_tokens(int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(2 + (i * 37) % (V() - 2));
    return t;
  }
  // Taps of n positions as the target would give them: bf16 values of magnitude ~1.
  static std::vector<float> random_taps(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> t(size_t(n * width()));
    for (float& x : t) x = round_bf16(rng.normal());
    return t;
  }
  DsparkState absorbed(const std::vector<float>& taps, int64_t n) {
    DsparkState st = make_dspark_state(m());
    scratch_.begin_step();
    EXPECT_TRUE(dspark_absorb(m(), st, taps.data(), n, scratch_).ok());
    return st;
  }

  struct Draft {
    std::vector<float> base, y;
  };
  Draft draft(const DsparkState& st, int32_t anchor, const Model* model = nullptr) {
    const Model& mm = model ? *model : m();
    Draft d;
    d.base.resize(size_t(mm.cfg.dspark.block_size * V()));
    d.y.resize(size_t(mm.cfg.dspark.block_size * D()));
    scratch_.begin_step();
    const Status s = dspark_draft_block(mm, st, anchor, d.base.data(), d.y.data(), scratch_);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return d;
  }

  // GEMM_fp8 of one row as spec §4.3 defines it: act_quant in blocks of 128, the product, bf16.
  static std::vector<float> gemm_fp8(const kernels::WeightView& w, const float* x) {
    std::vector<float> xq(x, x + w.cols), y(size_t(w.rows));
    kernels::act_quant_fp8(xq.data(), w.cols, 128);
    kernels::matmul(w, xq.data(), 1, y.data());
    for (float& v : y) v = round_bf16(v);
    return y;
  }
  // cos/sin of position p for a stage: base rope_theta, no YaRN (addendum §A2.3).
  static std::vector<float> stage_angles(int64_t p) {
    std::vector<float> cs(static_cast<size_t>(m().rope_plain.rope_dim));
    kernels::rope_angles(m().rope_plain, p, cs.data());
    return cs;
  }
  // A stage's raw entry of x (spec §5.3): RMSNorm(GEMM_fp8(x, wkv), kv_norm), RoPE at p, FP8
  // simulation of the nope dims in blocks of 64.
  static std::vector<float> stage_entry(const BlockWeights& b, const float* x, int64_t p) {
    std::vector<float> kv = gemm_fp8(b.attn.wkv, x);
    kernels::rms_norm(kv.data(), b.attn.kv_norm.data(), Dh(), float(cfg().rms_norm_eps), kv.data());
    const int64_t rope_dim = m().rope_plain.rope_dim;
    kernels::rope_apply(kv.data(), Dh(), rope_dim, stage_angles(p).data(), false);
    kernels::act_quant_fp8(kv.data(), Dh() - rope_dim, 64);
    return kv;
  }
  // mk_s(p) of one tap row, straight from the addendum's formulas (§A4.3, §A4.4).
  static std::vector<float> direct_mk(const float* tap, int64_t p, int64_t stage) {
    const DsparkWeights& d = m().w.dspark;
    std::vector<float> main_x = gemm_fp8(d.main_proj, tap);
    kernels::rms_norm(main_x.data(), d.main_norm.data(), D(), float(cfg().rms_norm_eps), main_x.data());
    return stage_entry(d.stages[size_t(stage)], main_x.data(), p);
  }
  // DSpark attention (addendum §A4.7) of one stage in doubles, for rows x [rows, D] at positions
  // pos0 + i. `causal` and `shift` (added to the rows' positions) make the wrong variants the
  // test must tell apart.
  static std::vector<float> naive_attention(const DsparkState& st, int64_t stage, const std::vector<float>& x,
                                            int64_t pos0, bool causal = false, int64_t shift = 0) {
    const BlockWeights& b = m().w.dspark.stages[size_t(stage)];
    const int64_t H = cfg().num_attention_heads, rows = int64_t(x.size()) / D(), rope_dim = m().rope_plain.rope_dim;
    const int64_t filled = std::min(W(), st.pos);
    const float eps = float(cfg().rms_norm_eps);
    std::vector<std::vector<float>> bank, q;
    for (int64_t j = 0; j < filled; ++j) {
      const uint16_t* slot = st.slot(stage, j);
      bank.emplace_back(Dh());
      for (int64_t e = 0; e < Dh(); ++e) bank.back()[size_t(e)] = bf16_to_f32(slot[e]);
    }
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t p = pos0 + i + shift;
      std::vector<float> qr = gemm_fp8(b.attn.wq_a, &x[size_t(i * D())]);
      kernels::rms_norm(qr.data(), b.attn.q_norm.data(), int64_t(qr.size()), eps, qr.data());
      q.push_back(gemm_fp8(b.attn.wq_b, qr.data()));
      for (int64_t h = 0; h < H; ++h) {
        kernels::head_rms_norm_bf16(&q.back()[size_t(h * Dh())], Dh(), eps);
        kernels::rope_apply(&q.back()[size_t(h * Dh())], Dh(), rope_dim, stage_angles(p).data(), false);
      }
      bank.push_back(stage_entry(b, &x[size_t(i * D())], p));
    }
    const int64_t G = cfg().o_groups, Ro = cfg().o_lora_rank, gw = H * Dh() / G;
    std::vector<float> out(size_t(rows * D()));
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t n = causal ? filled + i + 1 : filled + rows;
      std::vector<float> o(size_t(H * Dh()));
      for (int64_t h = 0; h < H; ++h) {
        const float* qh = &q[size_t(i)][size_t(h * Dh())];
        std::vector<double> z(static_cast<size_t>(n));
        for (int64_t a = 0; a < n; ++a) {
          double dot = 0;
          for (int64_t e = 0; e < Dh(); ++e) dot += double(qh[e]) * bank[size_t(a)][size_t(e)];
          z[size_t(a)] = dot / std::sqrt(double(Dh()));
        }
        const double M = *std::max_element(z.begin(), z.end());
        double denom = std::exp(double(b.attn.attn_sink[h]) - M);
        for (double v : z) denom += std::exp(v - M);
        for (int64_t e = 0; e < Dh(); ++e) {
          double acc = 0;
          for (int64_t a = 0; a < n; ++a) acc += std::exp(z[size_t(a)] - M) * bank[size_t(a)][size_t(e)];
          o[size_t(h * Dh() + e)] = round_bf16(float(acc / denom));
        }
        kernels::rope_apply(&o[size_t(h * Dh())], Dh(), rope_dim, stage_angles(pos0 + i + shift).data(), true);
      }
      std::vector<float> zg(size_t(G * Ro));   // spec §5.8: bf16(o_g · wo_a[g]ᵀ), then GEMM_fp8 with wo_b
      for (int64_t g = 0; g < G; ++g)
        for (int64_t r = 0; r < Ro; ++r) {
          const std::vector<float> w = dequant_row(b.attn.wo_a, g * Ro + r);
          double dot = 0;
          for (int64_t e = 0; e < gw; ++e) dot += double(o[size_t(g * gw + e)]) * w[size_t(e)];
          zg[size_t(g * Ro + r)] = round_bf16(float(dot));
        }
      const std::vector<float> y = gemm_fp8(b.attn.wo_b, zg.data());
      std::copy(y.begin(), y.end(), out.begin() + i * D());
    }
    return out;
  }
  static std::vector<float> markov_e(int32_t token) {
    const int64_t r = cfg().dspark.markov_rank;
    const uint16_t* row = static_cast<const uint16_t*>(m().w.dspark.markov_w1.data) + token * r;
    std::vector<float> e(static_cast<size_t>(r));
    for (int64_t k = 0; k < r; ++k) e[size_t(k)] = bf16_to_f32(row[k]);
    return e;
  }
  static std::vector<float> dequant_row(const kernels::WeightView& w, int64_t r) {
    std::vector<float> row(size_t(w.cols));
    kernels::dequant_row(w, r, row.data());
    return row;
  }

  static inline std::unique_ptr<test::TempDir> dir_;
  static inline std::unique_ptr<Model> model_;
  Scratch scratch_;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) {
           return std::bit_cast<uint32_t>(x) == std::bit_cast<uint32_t>(y);
         });
}

int64_t first_argmax(const float* z, int64_t n) { return std::max_element(z, z + n) - z; }

TEST_F(Dspark, StateAndTapShapes) {
  EXPECT_EQ(cfg().dspark.target_layer_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(width(), 3 * D());
  const DsparkState st = make_dspark_state(m());
  EXPECT_EQ(st.pos, 0);
  EXPECT_EQ(st.stages, 3);
  EXPECT_EQ(st.window, 128);
  EXPECT_EQ(st.dim, Dh());
  EXPECT_EQ(st.ring.size(), size_t(3 * 128 * Dh()));
  EXPECT_EQ(st.memory_bytes(), size_t(3 * 128 * Dh() * 2));   // addendum §A5.8: NS x W x Dh bf16
  EXPECT_TRUE(std::all_of(st.ring.begin(), st.ring.end(), [](uint16_t v) { return v == 0; }));
  EXPECT_EQ(st.slot(2, 5), st.ring.data() + (2 * 128 + 5) * Dh());
}

TEST_F(Dspark, RefusesWhatItCannotDraftFrom) {
  auto preview = load_model(test::fixture_dir("tiny") + "/checkpoint");
  ASSERT_TRUE(preview.ok());
  DsparkState none;
  std::vector<float> taps = random_taps(1, 1), base(size_t(gamma() * V())), y(size_t(gamma() * D()));
  EXPECT_EQ(dspark_absorb(**preview, none, taps.data(), 1, scratch_).code(), StatusCode::unsupported);
  EXPECT_EQ(dspark_absorb(m(), none, taps.data(), 1, scratch_).code(), StatusCode::invalid_argument);
  DsparkState st = make_dspark_state(m());
  EXPECT_EQ(dspark_absorb(m(), st, taps.data(), -1, scratch_).code(), StatusCode::invalid_argument);
  EXPECT_EQ(dspark_absorb(m(), st, nullptr, 1, scratch_).code(), StatusCode::invalid_argument);
  EXPECT_EQ(dspark_draft_block(m(), st, 5, base.data(), y.data(), scratch_).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(dspark_absorb(m(), st, taps.data(), 1, scratch_).ok());
  EXPECT_EQ(st.pos, 1);
  EXPECT_EQ(dspark_draft_block(m(), st, int32_t(V()), base.data(), y.data(), scratch_).code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(dspark_draft_block(m(), st, -1, base.data(), y.data(), scratch_).code(), StatusCode::invalid_argument);
  EXPECT_TRUE(dspark_draft_block(m(), st, 5, base.data(), y.data(), scratch_).ok());
}

// addendum §A8.2, §A4.2: tap k is the bf16 mean of the streams leaving layer T[k] (its output,
// the next layer's input); the streams themselves are what they are without taps.
TEST_F(Dspark, TapsAreTheStreamMeanAfterEachTappedLayer) {
  const std::vector<int32_t> tokens = prompt_tokens(9);
  const int64_t n = 9, nh = cfg().hc_mult;
  const Prompt p = run_prompt(tokens);
  {
    SequenceState seq = make_sequence_state(cfg());
    Batch batch;
    batch.add(&seq, tokens.data(), n, 0);
    std::vector<float> X(p.X.size());
    scratch_.begin_step();
    forward_streams(m(), batch, X.data(), scratch_);
    EXPECT_TRUE(same_bits(X, p.X)) << "taps changed the target's streams";
  }
  // The stack by hand, block by block, tapping after each layer of T.
  SequenceState seq = make_sequence_state(cfg());
  Batch batch;
  batch.add(&seq, tokens.data(), n, 0);
  std::vector<float> X(p.X.size());
  embed_rows(m(), tokens.data(), n, X.data());
  const std::vector<int64_t>& T = cfg().dspark.target_layer_ids;
  for (size_t l = 0; l < m().w.blocks.size(); ++l) {
    const std::vector<float> input = X;
    scratch_.begin_step();
    run_block(m(), m().w.blocks[l], batch, X.data(), scratch_);
    const auto k = std::find(T.begin(), T.end(), int64_t(l)) - T.begin();
    if (k == int64_t(T.size())) continue;
    SCOPED_TRACE(l);
    int64_t input_differs = 0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t d = 0; d < D(); ++d) {
        const float* x = &X[size_t(r * nh * D() + d)];
        const float mean = round_bf16((((x[0] + x[D()]) + x[2 * D()]) + x[3 * D()]) * 0.25f);
        ASSERT_EQ(p.taps[size_t(r * width() + k * D() + d)], mean) << "row " << r << " dim " << d;
        const float* u = &input[size_t(r * nh * D() + d)];
        input_differs += round_bf16((((u[0] + u[D()]) + u[2 * D()]) + u[3 * D()]) * 0.25f) != mean;
      }
    EXPECT_GT(input_differs, n * D() / 2) << "the layer's input would give the same taps";
  }
  // The last tapped layer is the last layer: its tap is the mean of the stack's output.
  ASSERT_EQ(T.back(), cfg().num_hidden_layers - 1);
  EXPECT_TRUE(same_bits(X, p.X));
}

// addendum §A8.3, §A4.4: after absorbing S positions, slot p mod W of stage s holds mk_s(p) for
// the last min(S, W) positions, computed straight from the formulas; other slots are untouched.
TEST_F(Dspark, RingSlotsHoldTheLastWindowOfPositions) {
  for (int64_t S : {1, 127, 128, 129, 300}) {
    SCOPED_TRACE(S);
    const std::vector<float> taps = random_taps(S, uint64_t(S));
    const DsparkState st = absorbed(taps, S);
    EXPECT_EQ(st.pos, S);
    for (int64_t s = 0; s < st.stages; ++s)
      for (int64_t j = 0; j < W(); ++j) {
        const uint16_t* slot = st.slot(s, j);
        if (j >= S) {
          ASSERT_TRUE(std::all_of(slot, slot + Dh(), [](uint16_t v) { return v == 0; })) << "slot " << j;
          continue;
        }
        const int64_t p = j + (S - 1 - j) / W() * W();   // the last position p < S with p mod W = j
        const std::vector<float> mk = direct_mk(&taps[size_t(p * width())], p, s);
        for (int64_t e = 0; e < Dh(); ++e)
          ASSERT_EQ(bf16_to_f32(slot[e]), mk[size_t(e)]) << "stage " << s << " slot " << j << " position " << p;
      }
  }
}

TEST_F(Dspark, AbsorbingInChunksGivesTheSameRings) {
  const int64_t S = 300;
  const std::vector<float> taps = random_taps(S, 7);
  const DsparkState whole = absorbed(taps, S);
  for (int64_t chunk : {1, 7, 128}) {
    SCOPED_TRACE(chunk);
    DsparkState st = make_dspark_state(m());
    for (int64_t p = 0; p < S; p += chunk) {
      scratch_.begin_step();
      ASSERT_TRUE(dspark_absorb(m(), st, &taps[size_t(p * width())], std::min(chunk, S - p), scratch_).ok());
    }
    EXPECT_EQ(st.pos, whole.pos);
    EXPECT_TRUE(st.ring == whole.ring);
  }
}

// The root mean square of a - b over that of b.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, sq = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    sq += double(b[i]) * b[i];
  }
  return std::sqrt(diff / sq);
}

// addendum §A4.7 against the attention computed in doubles: one bank of the filled slots and the
// block's entries for every row. The engine differs by its roundings (bf16 probabilities and
// outputs, then the FP8 quantisation before wo_b, which turns an ulp into a step now and then); a
// causal mask or rows one position off differ by several times more.
TEST_F(Dspark, StageAttentionIsSinkAttentionOverRingAndBlock) {
  // Measured (RMS of the difference over the RMS of the output): 0.010-0.016 for the engine;
  // causal 0.39-0.53 with 6 positions absorbed, 0.075-0.13 with 300; one position off 0.15-0.21.
  constexpr double kTolerance = 0.03;
  for (int64_t S : {6, 300}) {
    SCOPED_TRACE(S);
    const std::vector<float> taps = random_taps(S, uint64_t(200 + S));
    const DsparkState st = absorbed(taps, S);
    Rng rng(static_cast<uint64_t>(S));
    std::vector<float> x(static_cast<size_t>(gamma() * D()));
    for (float& v : x) v = round_bf16(rng.normal());
    std::vector<int32_t> ids(static_cast<size_t>(gamma()), 5);
    Batch batch;
    batch.add(nullptr, ids.data(), gamma(), st.pos);
    for (int64_t stage = 0; stage < st.stages; ++stage) {
      SCOPED_TRACE(stage);
      std::vector<float> out(x.size());
      scratch_.begin_step();
      dspark_attention(m(), st, stage, batch, x.data(), out.data(), scratch_);
      EXPECT_LT(relative_error(out, naive_attention(st, stage, x, st.pos)), kTolerance);
      EXPECT_GT(relative_error(out, naive_attention(st, stage, x, st.pos, /*causal=*/true)), kTolerance);
      EXPECT_GT(relative_error(out, naive_attention(st, stage, x, st.pos, false, /*shift=*/1)), kTolerance);
    }
  }
}

// A real prompt's taps through the rings and a draft: finite, deterministic, the right shapes,
// y bf16-valued, independent of the thread count.
TEST_F(Dspark, DraftBlockOfAPrompt) {
  const int64_t S = 9;
  const Prompt p = run_prompt(prompt_tokens(S));
  const DsparkState st = absorbed(p.taps, S);
  const Draft a = draft(st, 42);
  for (float v : a.base) ASSERT_TRUE(std::isfinite(v));
  for (float v : a.y) ASSERT_EQ(v, round_bf16(v));
  EXPECT_TRUE(same_bits(draft(st, 42).base, a.base));
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Draft one = draft(st, 42);
  omp_set_num_threads(threads);
  EXPECT_TRUE(same_bits(one.base, a.base));
  EXPECT_TRUE(same_bits(one.y, a.y));
  // The anchor is read: another one gives other logits.
  EXPECT_FALSE(same_bits(draft(st, 43).base, a.base));
}

// addendum §A4.9: base_i = f32(RMSNorm(y_i, norm)) · f32(head.weight)ᵀ, the target's head.
TEST_F(Dspark, BaseLogitsAreTheTargetHeadOfTheNormedY) {
  const std::vector<float> taps = random_taps(20, 3);
  const Draft d = draft(absorbed(taps, 20), 7);
  const DsparkWeights& w = m().w.dspark;
  for (int64_t i = 0; i < gamma(); ++i) {
    std::vector<float> yn(static_cast<size_t>(D()));
    kernels::rms_norm(&d.y[size_t(i * D())], w.head.norm.data(), D(), float(cfg().rms_norm_eps), yn.data());
    for (int64_t v = 0; v < V(); v += 13) {
      const std::vector<float> h = dequant_row(m().w.head, v);
      double dot = 0, mag = 0;
      for (int64_t k = 0; k < D(); ++k) {
        dot += double(yn[size_t(k)]) * h[size_t(k)];
        mag += std::fabs(double(yn[size_t(k)]) * h[size_t(k)]);
      }
      ASSERT_NEAR(d.base[size_t(i * V() + v)], dot, 1e-6 * mag + 1e-30) << "row " << i << " token " << v;
    }
  }
}

// The state is only read, and only its filled slots: before W positions are absorbed, what the
// other slots hold does not matter; the filled ones (and with S >= W every slot) do.
TEST_F(Dspark, DraftReadsOnlyTheFilledSlotsAndChangesNothing) {
  for (int64_t S : {5, 300}) {
    SCOPED_TRACE(S);
    const std::vector<float> taps = random_taps(S, uint64_t(100 + S));
    const DsparkState st = absorbed(taps, S);
    const DsparkState before = st;
    const Draft a = draft(st, 11);
    EXPECT_EQ(st.pos, before.pos);
    EXPECT_TRUE(st.ring == before.ring);
    const int64_t filled = std::min(S, W());
    DsparkState junk = st;
    Rng rng(9);
    for (int64_t s = 0; s < junk.stages; ++s)
      for (int64_t j = filled; j < W(); ++j)
        for (int64_t e = 0; e < Dh(); ++e) junk.ring[size_t((s * W() + j) * Dh() + e)] = f32_to_bf16(rng.normal());
    const Draft b = draft(junk, 11);
    EXPECT_TRUE(same_bits(a.base, b.base));
    EXPECT_TRUE(same_bits(a.y, b.y));
    for (int64_t j : {int64_t(0), filled - 1}) {   // a filled slot of the last stage is attended
      DsparkState other = st;
      uint16_t* slot = other.ring.data() + ((other.stages - 1) * W() + j) * Dh();
      for (int64_t e = 0; e < Dh(); ++e) slot[e] = f32_to_bf16(-bf16_to_f32(slot[e]));
      EXPECT_FALSE(same_bits(draft(other, 11).y, a.y)) << "slot " << j;
    }
  }
}

// addendum §A8.4, §A4.7: no causal mask inside the block. Under a causal mask rows 0..γ-2 would
// not see row γ-1; here dropping that row (a block of γ-1) changes row 0.
TEST_F(Dspark, DraftRowsSeeEveryRowOfTheBlock) {
  auto shorter = load_model(dir_->path());
  ASSERT_TRUE(shorter.ok());
  (*shorter)->cfg.dspark.block_size = gamma() - 1;
  const std::vector<float> taps = random_taps(40, 5);
  const DsparkState st = absorbed(taps, 40);
  const Draft full = draft(st, 21), cut = draft(st, 21, shorter->get());
  const std::vector<float> row0_full(full.y.begin(), full.y.begin() + D());
  const std::vector<float> row0_cut(cut.y.begin(), cut.y.begin() + D());
  EXPECT_FALSE(same_bits(row0_full, row0_cut));
}

// addendum §A8.5, §A4.10: with Temp = 0, z_i = base_i + f32(markov_w1[prev_i]) · f32(markov_w2)ᵀ
// and prev_{i+1} = argmax z_i (first index on ties), prev_0 = the anchor.
TEST_F(Dspark, GreedyMarkovLoop) {
  const std::vector<float> taps = random_taps(30, 11);
  const int32_t anchor = 77;
  const Draft d = draft(absorbed(taps, 30), anchor);
  const DsparkWeights& w = m().w.dspark;
  const int64_t r = cfg().dspark.markov_rank;
  int32_t prev = anchor;
  std::vector<int32_t> drafted;
  for (int64_t i = 0; i < gamma(); ++i) {
    SCOPED_TRACE(i);
    std::vector<float> z(d.base.begin() + i * V(), d.base.begin() + (i + 1) * V());
    scratch_.begin_step();
    dspark_markov_add(m(), prev, z.data(), scratch_);
    // Bit for bit: one f32 add of the f32 product (matmul.h's order) into the base logits.
    const std::vector<float> e = markov_e(prev);
    std::vector<float> bias(static_cast<size_t>(V()));
    kernels::matmul(w.markov_w2, e.data(), 1, bias.data());
    for (int64_t v = 0; v < V(); ++v) ASSERT_EQ(z[size_t(v)], d.base[size_t(i * V() + v)] + bias[size_t(v)]);
    // And the product is the dot it should be.
    for (int64_t v = 0; v < V(); v += 7) {
      const std::vector<float> w2 = dequant_row(w.markov_w2, v);
      double dot = 0, mag = 0;
      for (int64_t k = 0; k < r; ++k) {
        dot += double(e[size_t(k)]) * w2[size_t(k)];
        mag += std::fabs(double(e[size_t(k)]) * w2[size_t(k)]);
      }
      ASSERT_NEAR(bias[size_t(v)], dot, 1e-6 * mag + 1e-30);
    }
    prev = int32_t(first_argmax(z.data(), V()));
    drafted.push_back(prev);
  }
  EXPECT_EQ(drafted.size(), size_t(gamma()));
  // The term depends on the previous token.
  std::vector<float> z1(d.base.begin(), d.base.begin() + V()), z2 = z1;
  dspark_markov_add(m(), 3, z1.data(), scratch_);
  dspark_markov_add(m(), 4, z2.data(), scratch_);
  EXPECT_FALSE(same_bits(z1, z2));
}

// addendum §A8.6, §A4.11: c_i = f32([y_i; e_i]) · f32(proj)ᵀ, with y_i before the norm and e_i the
// Markov embedding of prev_i.
TEST_F(Dspark, ConfidenceIsTheProjectionOfYAndTheMarkovEmbedding) {
  const std::vector<float> taps = random_taps(12, 13);
  const Draft d = draft(absorbed(taps, 12), 9);
  const std::vector<float>& proj = m().w.dspark.confidence_proj;
  ASSERT_EQ(proj.size(), size_t(D() + cfg().dspark.markov_rank));
  for (int64_t i = 0; i < gamma(); ++i) {
    for (int32_t prev : {9, 500}) {
      const float* y = &d.y[size_t(i * D())];
      const std::vector<float> e = markov_e(prev);
      double dot = 0, mag = 0;
      for (int64_t k = 0; k < D(); ++k) {
        dot += double(y[k]) * proj[size_t(k)];
        mag += std::fabs(double(y[k]) * proj[size_t(k)]);
      }
      for (size_t k = 0; k < e.size(); ++k) {
        dot += double(e[k]) * proj[size_t(D()) + k];
        mag += std::fabs(double(e[k]) * proj[size_t(D()) + k]);
      }
      scratch_.begin_step();
      EXPECT_NEAR(dspark_confidence(m(), y, prev, scratch_), dot, 1e-6 * mag + 1e-30) << i << " " << prev;
    }
  }
  EXPECT_NE(dspark_confidence(m(), d.y.data(), 9, scratch_), dspark_confidence(m(), d.y.data(), 500, scratch_));
}

}  // namespace
}  // namespace dsv4::model

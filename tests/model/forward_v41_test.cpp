// The V4.1 forward's state and selection rules (v4.1 §5.8.3, §8, §13 items 5, 8, 9, 11) on a
// tiny-v41 synthetic checkpoint and on the released config.
#include "model/forward_v41.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "eval/quiet_synth_options.h"
#include "io/test_tmp_dir.h"
#include "io/v41_release_config.h"
#include "kernels/cpu/fp4_pack.h"
#include "model/attention_v41.h"
#include "model/forward.h"
#include "model/hc.h"
#include "model/state.h"

namespace dsv4::model {
namespace {

// Packed bytes per token of the growing state (v4.1 §8.1): per KV source, an entry (latent and
// index key) every m tokens.
double packed_bytes_per_token(const io::ModelConfig& c) {
  const SequenceState s = make_sequence_state(c);
  double bytes = 0;
  for (const LayerState& l : s.layers)
    if (l.comp_bytes > 0) bytes += double(l.comp_bytes + l.idx_bytes) / double(l.ratio);
  return bytes;
}

TEST(V41State, ReleasedConfigHolds890BytesPerToken) {
  auto c = io::parse_config(test::kV41ReleaseConfig, "release");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  // v4.1 §8.1: 3 x (288 + 68) / 2 + (288 + 68) = 890 B, the tech report's figure.
  EXPECT_EQ(packed_bytes_per_token(*c), 890.0);
  const SequenceState s = make_sequence_state(*c);
  ASSERT_EQ(s.layers.size(), 40u);
  EXPECT_EQ(s.layers[20].comp_bytes, 288);
  EXPECT_EQ(s.layers[20].idx_bytes, 68);
  EXPECT_EQ(s.layers[21].comp_bytes, 0);   // a reader holds no entries of its own (v4.1 §5.7)
  EXPECT_EQ(s.engram_history.size(), 3u);  // v4.1 §8.2: 3 compressed ids
}

class V41Forward : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny_v41);
    o.layers = 25;   // the whole schedule up to the first decoder index source (24)
    ASSERT_TRUE(eval::synth_checkpoint(o, dir_->path()).ok());
    auto m = load_model(dir_->path());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(*m).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    dir_.reset();
  }
  // Runs n tokens through a fresh state in one chunk.
  static SequenceState prefill(int64_t n) {
    SequenceState st = make_sequence_state(model_->cfg);
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tokens[size_t(i)] = int32_t(3 + (i * 37) % 900);
    Batch batch;
    batch.add(&st, tokens.data(), n, 0);
    Scratch scratch;
    scratch.begin_step();
    std::vector<float> X(size_t(n * stream_width(model_->cfg)));
    forward_streams(*model_, batch, X.data(), scratch);
    for (float v : X) EXPECT_TRUE(std::isfinite(v));
    return st;
  }
  static std::unique_ptr<test::TempDir> dir_;
  static Model* model_;
};
std::unique_ptr<test::TempDir> V41Forward::dir_;
Model* V41Forward::model_ = nullptr;

TEST_F(V41Forward, StateGrowsByThePackedBytesPerToken) {
  ASSERT_NE(model_, nullptr);
  const io::ModelConfig& c = model_->cfg;
  // tiny-v41: Dh 128 -> 64 + 8 B per latent, Di 64 -> 32 + 2 B per key; sources 2, 8, 14 (m = 2), 20 (m = 1).
  EXPECT_EQ(packed_bytes_per_token(c), 3 * (72.0 + 34.0) / 2 + (72.0 + 34.0));
  for (int64_t n : {1, 2, 3, 64}) {   // v4.1 §13 item 8: odd lengths leave a pending token
    SCOPED_TRACE(n);
    const SequenceState st = prefill(n);
    EXPECT_EQ(st.pos, n);
    size_t grown = 0;
    for (size_t l = 0; l < st.layers.size(); ++l) {
      const LayerState& ls = st.layers[l];
      const io::V41Layer& r = c.v41.layers[l];
      if (!r.kv_source) {
        EXPECT_TRUE(ls.comp_fp4.empty() && ls.idx_fp4.empty()) << l;
        continue;
      }
      EXPECT_EQ(int64_t(ls.comp_fp4.size()), n / r.ratio * ls.comp_bytes) << l;   // m = 1: one per token
      EXPECT_EQ(int64_t(ls.idx_fp4.size()), n / r.ratio * ls.idx_bytes) << l;
      grown += ls.comp_fp4.size() + ls.idx_fp4.size();
    }
    if (n % 2 == 0) {
      EXPECT_EQ(double(grown), double(n) * packed_bytes_per_token(c));
    }
  }
}

TEST_F(V41Forward, SyntheticStateHasThePrefilledShapes) {
  ASSERT_NE(model_, nullptr);
  for (int64_t depth : {3, 64}) {
    SCOPED_TRACE(depth);
    const SequenceState real = prefill(depth);
    SequenceState synth = make_sequence_state(model_->cfg);
    fill_synthetic_state(synth, depth, 1);
    EXPECT_EQ(synth.pos, real.pos);
    ASSERT_EQ(synth.layers.size(), real.layers.size());
    for (size_t l = 0; l < real.layers.size(); ++l) {
      EXPECT_EQ(synth.layers[l].comp_fp4.size(), real.layers[l].comp_fp4.size()) << l;
      EXPECT_EQ(synth.layers[l].idx_fp4.size(), real.layers[l].idx_fp4.size()) << l;
    }
  }
}

TEST(V41Candidates, PinTheNewestBlockThenTheBestMaxima) {
  Arena a;
  // 5 blocks of 8 over 36 visible entries (the last block partial), keep 3.
  std::vector<float> score(36, 0.0f);
  score[3] = 5.0f;    // block 0
  score[12] = 9.0f;   // block 1
  score[20] = 1.0f;   // block 2
  score[30] = 7.0f;   // block 3
  score[33] = -4.0f;  // block 4 holds the newest entry (35): pinned although weak
  for (int i = 32; i < 36; ++i) score[size_t(i)] = std::min(score[size_t(i)], -4.0f);
  int32_t kept[3];
  ASSERT_EQ(candidate_blocks(score.data(), 36, 8, 3, kept, a), 3);
  EXPECT_EQ(std::vector<int32_t>(kept, kept + 3), (std::vector<int32_t>{4, 1, 3}));
  // Ties between block maxima go to the lower block.
  std::fill(score.begin(), score.end(), 0.0f);
  ASSERT_EQ(candidate_blocks(score.data(), 36, 8, 3, kept, a), 3);
  EXPECT_EQ(std::vector<int32_t>(kept, kept + 3), (std::vector<int32_t>{4, 0, 1}));
  // No more blocks than kept: no filtering.
  EXPECT_EQ(candidate_blocks(score.data(), 24, 8, 3, kept, a), -1);
}

TEST(V41Hc, OneHotCollapseIsStreamZero) {   // v4.1 §13 item 5: layer 0's attention input
  HcParams p;
  p.n_hc = 4;
  p.dim = 8;
  std::vector<float> X(32), u(8);
  for (size_t i = 0; i < X.size(); ++i) X[i] = std::ldexp(1.0f + float(i) / 64.0f, int(i % 7) - 3);
  const float onehot[4] = {1.0f, 0.0f, 0.0f, 0.0f};
  hc_collapse(p, X.data(), onehot, u.data());
  for (int d = 0; d < 8; ++d) EXPECT_EQ(u[size_t(d)], X[size_t(d)]);
}

}  // namespace
}  // namespace dsv4::model

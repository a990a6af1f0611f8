// Cutting a chunk back to a prefix (model/chunk_undo.h, addendum §A5.5; v4.1 §9 "Rollback"): after
// any cut, the sequence state must equal, bit for bit, the state of a run that only ever saw the
// kept tokens.
#include "model/chunk_undo.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "eval/quiet_synth_options.h"
#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "model/forward.h"
#include "model/model.h"
#include "test_paths.h"

namespace dsv4::model {
namespace {

void expect_same_state(const SequenceState& a, const SequenceState& b, int64_t main_layers) {
  ASSERT_EQ(a.pos, b.pos);
  for (int64_t l = 0; l < main_layers; ++l) {
    SCOPED_TRACE(l);
    const LayerState &x = a.layers[size_t(l)], &y = b.layers[size_t(l)];
    EXPECT_TRUE(x.ring == y.ring);
    EXPECT_TRUE(x.comp == y.comp);
    EXPECT_TRUE(x.idx == y.idx);
    for (auto [p, q] : {std::pair{&x.comp_state, &y.comp_state}, std::pair{&x.idx_state, &y.idx_state}}) {
      ASSERT_EQ(p->kv.size(), q->kv.size());
      if (p->kv.empty()) continue;   // no compressor (SWA), or no indexer (HCA)
      EXPECT_EQ(0, std::memcmp(p->kv.data(), q->kv.data(), p->kv.size() * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(p->score.data(), q->score.data(), p->score.size() * sizeof(float)));
    }
  }
}

// Token t at position p of the reference stream.
int32_t stream_token(int64_t p, int64_t vocab) { return int32_t((p * 7919 + 13) % (vocab - 2)) + 2; }

// Verify-style rounds over ~300 positions (crossing CSA windows of 4 and an HCA window of 128
// twice): each round feeds a chunk of 1..9 tokens whose token at `bad` is wrong, cuts it back to
// the tokens before `bad`, and compares with a sequence fed only the kept tokens, one at a time.
TEST(ChunkUndo, CutEqualsARunThatNeverSawTheRejectedTokens) {
  auto m = load_model(test::fixture_dir("tiny") + "/checkpoint");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Model& model = **m;
  const io::ModelConfig& c = model.cfg;
  const int64_t V = c.vocab_size, S = c.hc_mult * c.hidden_size, L = c.num_hidden_layers;
  SequenceState plain = make_sequence_state(c), spec = make_sequence_state(c);
  Scratch scratch;
  std::vector<float> X(static_cast<size_t>(16 * S)), Y(static_cast<size_t>(S));
  std::vector<int32_t> chunk;
  int cuts_at[10] = {};
  for (int round = 0; spec.pos < 300; ++round) {
    SCOPED_TRACE(round);
    const int64_t len = 1 + round % 9;
    const int64_t bad = round % 4 == 3 ? len : 1 + (round * 5) % len;   // len: nothing rejected
    chunk.clear();
    for (int64_t j = 0; j < len; ++j) {
      const int32_t t = stream_token(spec.pos + j, V);
      chunk.push_back(j == bad ? int32_t((t + 1) % V) : t);
    }
    const int64_t start = spec.pos;
    undo_begin(c, spec, len);
    Batch batch;
    batch.add(&spec, chunk.data(), len, start);
    scratch.begin_step();
    forward_streams(model, batch, X.data(), scratch);
    scratch.begin_step();
    undo_cut(model, spec, bad, scratch.main);
    cuts_at[bad] += 1;
    ASSERT_EQ(spec.pos, start + bad);
    // The plain sequence consumes the kept tokens one by one; its streams must equal the chunk's
    // rows for them.
    for (int64_t j = 0; j < bad; ++j) {
      Batch one;
      one.add(&plain, &chunk[size_t(j)], 1, plain.pos);
      scratch.begin_step();
      forward_streams(model, one, Y.data(), scratch);
      ASSERT_EQ(0, std::memcmp(Y.data(), X.data() + j * S, size_t(S) * sizeof(float))) << "row " << j;
    }
    expect_same_state(plain, spec, L);
    if (HasFatalFailure()) return;
  }
  for (int k = 1; k <= 8; ++k) EXPECT_GT(cuts_at[k], 0) << "no cut kept " << k << " tokens";
}

void expect_same_v41_state(const SequenceState& a, const SequenceState& b) {
  ASSERT_EQ(a.pos, b.pos);
  EXPECT_EQ(a.engram_history, b.engram_history);
  for (size_t l = 0; l < a.layers.size(); ++l) {
    SCOPED_TRACE(l);
    const LayerState &x = a.layers[l], &y = b.layers[l];
    EXPECT_TRUE(x.ring == y.ring);
    EXPECT_TRUE(x.comp_fp4 == y.comp_fp4);
    EXPECT_TRUE(x.idx_fp4 == y.idx_fp4);
    ASSERT_EQ(x.comp_state.kv.size(), y.comp_state.kv.size());
    if (x.comp_state.kv.empty()) continue;   // not a ratio-2 source
    EXPECT_EQ(0, std::memcmp(x.comp_state.kv.data(), y.comp_state.kv.data(), x.comp_state.kv.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(x.comp_state.score.data(), y.comp_state.score.data(),
                             x.comp_state.score.size() * sizeof(float)));
  }
}

// V4.1 (v4.1 §9 "Rollback") on a tiny-v41 synthetic checkpoint of 25 layers (every role: KV
// sources 2, 8, 14, 20, candidate source 20 and consumer 24, Engram 1, 14): the rounds of the test
// above over ~300 positions, which cross the 128-slot window twice, the ratio-2 pending pair, the
// shared FP4 latents and index keys, the candidate filter, and the Engram lookback. After every
// cut the whole state equals that of a run fed only the kept tokens (as one chunk: chunking
// changes nothing, engine_v41_test), bit for bit, and so do the streams of the kept rows.
TEST(ChunkUndo, V41CutEqualsARunThatNeverSawTheRejectedTokens) {
  test::TempDir dir;
  eval::SynthOptions o = test::quiet_synth_options(eval::SynthPreset::tiny_v41);
  o.layers = 25;
  ASSERT_TRUE(eval::synth_checkpoint(o, dir.path()).ok());
  auto m = load_model(dir.path());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Model& model = **m;
  const io::ModelConfig& c = model.cfg;
  const int64_t V = c.vocab_size, S = stream_width(c);
  SequenceState plain = make_sequence_state(c), spec = make_sequence_state(c);
  Scratch scratch;
  std::vector<float> X(static_cast<size_t>(16 * S)), Y(static_cast<size_t>(16 * S));
  std::vector<int32_t> chunk;
  int cuts_at[10] = {};
  for (int round = 0; spec.pos < 300; ++round) {
    SCOPED_TRACE(round);
    const int64_t len = 1 + round % 9;
    const int64_t bad = round % 4 == 3 ? len : 1 + (round * 5) % len;
    chunk.clear();
    for (int64_t j = 0; j < len; ++j) {
      const int32_t t = stream_token(spec.pos + j, V);
      chunk.push_back(j == bad ? int32_t((t + 1) % V) : t);
    }
    const int64_t start = spec.pos;
    undo_begin(c, spec, len);
    Batch batch;
    batch.add(&spec, chunk.data(), len, start);
    scratch.begin_step();
    forward_streams(model, batch, X.data(), scratch);
    scratch.begin_step();
    undo_cut(model, spec, bad, scratch.main);
    cuts_at[bad] += 1;
    ASSERT_EQ(spec.pos, start + bad);
    if (bad > 0) {
      Batch kept;
      kept.add(&plain, chunk.data(), bad, plain.pos);
      scratch.begin_step();
      forward_streams(model, kept, Y.data(), scratch);
      ASSERT_EQ(0, std::memcmp(Y.data(), X.data(), size_t(bad * S) * sizeof(float)));
    }
    expect_same_v41_state(plain, spec);
    if (HasFatalFailure()) return;
  }
  for (int k = 1; k <= 8; ++k) EXPECT_GT(cuts_at[k], 0) << "no cut kept " << k << " tokens";
}

// A record ends with the cut; a copied state carries no record.
TEST(ChunkUndo, CopiesCarryNoRecord) {
  auto m = load_model(test::fixture_dir("tiny") + "/checkpoint");
  ASSERT_TRUE(m.ok());
  SequenceState s = make_sequence_state((*m)->cfg);
  undo_begin((*m)->cfg, s, 3);
  EXPECT_EQ(s.undo.start, 0);
  SequenceState copy = s;
  EXPECT_EQ(copy.undo.start, -1);
}

}  // namespace
}  // namespace dsv4::model

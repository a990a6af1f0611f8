// fill_synthetic_state (benchmarks) builds the same state shapes as a real prefill.
#include "model/state.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/forward.h"
#include "model/model.h"
#include "test_paths.h"

namespace dsv4::model {
namespace {

TEST(SyntheticState, HasTheShapesOfAPrefilledState) {
  auto m = load_model(test::fixture_dir("tiny-c") + "/checkpoint");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Model& model = **m;
  for (int64_t depth : {3, 4, 130, 258}) {
    SCOPED_TRACE(depth);
    SequenceState real = make_sequence_state(model.cfg);
    std::vector<int32_t> tokens(static_cast<size_t>(depth));
    for (int64_t i = 0; i < depth; ++i) tokens[size_t(i)] = int32_t(2 + i % 50);
    Batch batch;
    batch.add(&real, tokens.data(), depth, 0);
    Scratch scratch;
    scratch.begin_step();
    std::vector<float> X(size_t(depth * model.cfg.hc_mult * model.cfg.hidden_size));
    forward_streams(model, batch, X.data(), scratch);

    SequenceState synth = make_sequence_state(model.cfg);
    fill_synthetic_state(synth, depth, 1);
    EXPECT_EQ(synth.pos, real.pos);
    ASSERT_EQ(synth.layers.size(), real.layers.size());
    for (size_t l = 0; l + 1 < real.layers.size(); ++l) {   // main stack (the MTP block never ran)
      SCOPED_TRACE(l);
      const LayerState &a = real.layers[l], &b = synth.layers[l];
      EXPECT_EQ(a.ring.size(), b.ring.size());
      EXPECT_EQ(a.comp.size(), b.comp.size());
      EXPECT_EQ(a.idx.size(), b.idx.size());
      // The compressor rows a real state holds at this depth are the ones filled (score finite).
      for (auto [x, y] : {std::pair{&a.comp_state, &b.comp_state}, std::pair{&a.idx_state, &b.idx_state}}) {
        ASSERT_EQ(x->score.size(), y->score.size());
        for (size_t i = 0; i < x->score.size(); ++i)
          ASSERT_EQ(std::isinf(x->score[i]), std::isinf(y->score[i])) << "score element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::model

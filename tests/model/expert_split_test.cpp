// Expert parallelism's contract in model/ (model/expert_split.h, issue #17): Models that each
// compute a share of the routed experts and exchange their rows give logits bit-identical to one
// Model computing them all. Two threads stand for two ranks here; runtime/mpi_expert_split does
// the same exchange over MPI (tests/scripts/mpi_expert_parallel.sh).
#include "model/expert_split.h"

#include <gtest/gtest.h>

#include <barrier>
#include <cstring>
#include <thread>
#include <vector>

#include "model/forward.h"
#include "model/model.h"
#include "test_paths.h"

namespace dsv4::model {
namespace {

// What two in-process "ranks" share: every pair row, and a barrier to take turns on it.
struct SharedRows {
  std::vector<float> rows;
  std::barrier<> sync{2};
};

class ThreadSplit final : public ExpertSplit {
 public:
  ThreadSplit(SharedRows& shared, int64_t first, int64_t last) : shared_(shared), first_(first), last_(last) {}
  int64_t first() const override { return first_; }
  int64_t last() const override { return last_; }
  void exchange(float* pair_y, const int64_t* start, int64_t n_experts, int64_t rows, int64_t D) override {
    const int64_t own0 = start[first_] * D, own1 = start[last_] * D;
    ASSERT_LE(start[n_experts] * D, int64_t(shared_.rows.size()));
    std::copy(pair_y + own0, pair_y + own1, shared_.rows.begin() + own0);
    shared_.sync.arrive_and_wait();   // both shares written
    for (int64_t i = 0; i < start[n_experts] * D; ++i)
      if (i < own0 || i >= own1) pair_y[i] = shared_.rows[size_t(i)];
    shared_.sync.arrive_and_wait();   // both read before the next step writes
  }

 private:
  SharedRows& shared_;
  int64_t first_, last_;
};

// Logits of a chunked prefill (chunks of 7: steps of several rows) then 3 one-token steps.
std::vector<float> run(const Model& m) {
  const int64_t V = m.cfg.vocab_size, S = m.cfg.hc_mult * m.cfg.hidden_size;
  SequenceState seq = make_sequence_state(m.cfg);
  Scratch scratch;
  std::vector<float> logits;
  for (int64_t pos = 0; pos < 23;) {
    const int64_t n = pos < 20 ? std::min<int64_t>(7, 20 - pos) : 1;
    std::vector<int32_t> tokens;
    for (int64_t j = 0; j < n; ++j) tokens.push_back(int32_t(((pos + j) * 7919 + 13) % (V - 2)) + 2);
    Batch batch;
    batch.add(&seq, tokens.data(), n, pos);
    scratch.begin_step();
    Streams X(static_cast<size_t>(n * S));
    forward_streams(m, batch, X.data(), scratch);
    std::vector<float> row(static_cast<size_t>(V));
    const std::vector<int64_t> rows = {n - 1};
    head_logits(m, m.w.final_head, X.data(), rows, row.data(), scratch);
    logits.insert(logits.end(), row.begin(), row.end());
    pos += n;
  }
  return logits;
}

TEST(ExpertSplit, TwoSharesGiveTheLogitsOfOneModel) {
  const std::string dir = test::fixture_dir("tiny") + "/checkpoint";
  auto whole = load_model(dir), a = load_model(dir), b = load_model(dir);
  ASSERT_TRUE(whole.ok() && a.ok() && b.ok()) << whole.status().to_string();
  const int64_t E = (*whole)->cfg.n_routed_experts, K = (*whole)->cfg.num_experts_per_tok;
  const int64_t cut = E / 3;   // uneven shares
  SharedRows shared;
  shared.rows.resize(size_t(7 * K * (*whole)->cfg.hidden_size));
  (*a)->expert_split = std::make_unique<ThreadSplit>(shared, 0, cut);
  (*b)->expert_split = std::make_unique<ThreadSplit>(shared, cut, E);

  const std::vector<float> expected = run(**whole);
  std::vector<float> got_a, got_b;
  std::thread ta([&] { got_a = run(**a); });
  std::thread tb([&] { got_b = run(**b); });
  ta.join();
  tb.join();
  ASSERT_EQ(got_a.size(), expected.size());
  ASSERT_EQ(got_b.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(got_a.data(), expected.data(), expected.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(got_b.data(), expected.data(), expected.size() * sizeof(float)));
}

}  // namespace
}  // namespace dsv4::model

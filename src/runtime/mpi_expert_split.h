// The routed experts divided among the ranks of a World (model/expert_split.h, issue #17): rank r
// of N computes experts [E·r/N, E·(r+1)/N) of every MoE layer, contiguous ranges so that each
// rank's (token, expert) pairs are one block of moe_forward's expert-ordered pair rows, and one
// MPI_Iallgatherv per MoE step gives every rank every row (polled against the step deadline,
// World::wait).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "model/expert_split.h"
#include "runtime/mpi_world.h"

namespace dsv4::runtime {

// Experts [first, second) of `rank` among `size` ranks.
std::pair<int64_t, int64_t> expert_range(int64_t n_experts, int rank, int size);

// What the exchanges of one kind of MoE step cost this rank.
struct ExchangeTally {
  int64_t calls = 0;      // MoE steps (one per MoE layer per forward pass)
  int64_t rows = 0;       // tokens over those steps
  double bytes_in = 0;    // the other ranks' rows received
  double bytes_out = 0;   // this rank's rows, sent to each of the others
  double seconds = 0;     // wall time inside the exchange (waiting for the slowest rank included)
};

struct ExchangeCounters {
  ExchangeTally one_row;    // steps of one token (a decode step of one sequence, a draft slot)
  ExchangeTally many_rows;  // steps of several (prefill chunks, verify chunks, batched decode)
};

class MpiExpertSplit final : public model::ExpertSplit {
 public:
  MpiExpertSplit(const World& world, int64_t n_experts);
  ~MpiExpertSplit() override;
  int64_t first() const override { return first_; }
  int64_t last() const override { return last_; }
  void exchange(float* pair_y, const int64_t* start, int64_t n_experts, int64_t rows, int64_t D) override;
  const ExchangeCounters& counters() const { return counters_; }

 private:
  const World& world_;
  int64_t first_ = 0, last_ = 0;
  std::vector<std::pair<int64_t, int64_t>> ranges_;   // [rank]
  // Reused from step to step (a warm decode step allocates nothing).
  std::vector<uint16_t> rows_;        // every pair's row as bf16
  std::vector<int> counts_, displs_;  // in rows, per rank
  MPI_Datatype row_type_ = MPI_DATATYPE_NULL;
  int64_t row_width_ = 0;
  ExchangeCounters counters_;
};

}  // namespace dsv4::runtime

// Expert parallelism (issue #17): the routed experts of every MoE layer divided among several
// processes, each holding and computing only its own. Everything else (attention, the shared
// expert, hyper-connections, embedding, head) is replicated, so every process holds the same
// hidden states and the same routing; what they exchange is only the routed experts' output rows.
//
// model/ knows the division, never how the rows travel: the implementation (MPI) lives in
// runtime/. A Model without one (Model::expert_split null) computes every expert itself and takes
// the single-process path of moe_forward unchanged.
#pragma once

#include <cstdint>

namespace dsv4::model {

class ExpertSplit {
 public:
  virtual ~ExpertSplit() = default;

  // The routed experts this process computes: ids [first(), last()) of every MoE layer (the same
  // range in each, including the MTP block and the DSpark stages).
  virtual int64_t first() const = 0;
  virtual int64_t last() const = 0;

  // One MoE step's exchange (moe_forward) over `rows` tokens: pair_y holds [start[E], D] output rows of the step's
  // (token, expert) pairs, grouped by expert ascending (expert e's pairs are rows
  // [start[e], start[e + 1])). This process has filled the rows of its own experts; on return
  // every row holds its owner's output, bit for bit, so that each process can sum every token's
  // experts in the canonical order of the single-process path (spec §5.10: ascending id).
  // Every process of the split calls it at the same step with the same `start` (the routing is
  // replicated). Failures of the transport end the whole job (they are not recoverable in the
  // middle of a forward pass, and the other processes must not wait for a step that never comes).
  virtual void exchange(float* pair_y, const int64_t* start, int64_t n_experts, int64_t rows, int64_t D) = 0;
};

}  // namespace dsv4::model

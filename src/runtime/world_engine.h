// Loading and running the model on every rank of a World (issue #17, docs/scale-out.md).
//
// Rank 0 gets an Engine like any other; each of its calls (and each new, cloned, reserved or
// freed Sequence) is first broadcast to the other ranks, which run the same call on engines of
// their own, so that every rank's forward pass reaches each MoE exchange at the same step with
// the same hidden states. The other ranks never return to their command: they follow rank 0
// until its engine is destroyed, then end.
//
// The protocol is a list of int64 words per engine call (one MPI_Bcast of its length, one of the
// words): the engine's index (a launch may load several, load_engines_on_world), then the
// Sequence operations recorded since the previous call, so that Sequence
// objects stay plain values on rank 0 (clone() and the destructor may run on any thread; they
// only record).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/mpi_expert_split.h"
#include "runtime/mpi_world.h"

namespace dsv4::runtime {

// The tensors of the routed experts outside [first, last), in every MoE block of a V4 checkpoint
// (the main blocks, the MTP block, the DSpark stages).
std::set<std::string> expert_tensors_outside(const io::ModelConfig& cfg, int64_t first, int64_t last);

// The tensors this rank of `world` maps and computes with: every tensor but the other ranks'
// routed experts (all of them with one rank: an empty filter). For io::unneeded_shards (the
// integrity check of a rank's own files) and the load. Errors: config.json unreadable.
Result<io::TensorFilter> rank_tensors(const World& world, const std::string& dir);

// Collective: model::load_model on every rank, with this rank's share of the routed experts
// (MpiExpertSplit, when there are several ranks): only the shards holding rank_tensors are
// mapped, and if `populate`, only those tensors' bytes faulted in
// (io::Checkpoint::populate_tensors). With `numa`, each rank first copies the replicated tensors
// to its own node (runtime/numa_placement.h). The outcome is agreed: a failure on any rank (a
// shard it needs missing on its node, a rank not bound to one node) is every rank's error,
// naming it.
Result<std::unique_ptr<model::Model>> load_model_on_world(const World& world, const std::string& dir, bool populate,
                                                          bool numa);

// Collective: Engine::load for a World. On rank 0, the lockstep engine described above. On the
// other ranks it does not return: they serve rank 0's calls, then end the process (World::exit,
// status 0; status 1 when the load failed, which rank 0 reports).
Result<std::unique_ptr<Engine>> load_engine_on_world(World& world, const std::string& dir,
                                                     const EngineOptions& options);
// The same for several engines over one checkpoint, one per entry of `options` (bench
// --speculative: with and without the drafter; the weight pages are shared). The other ranks
// serve every engine's calls until all of them have stopped.
Result<std::vector<std::unique_ptr<Engine>>> load_engines_on_world(World& world, const std::string& dir,
                                                                 const std::vector<EngineOptions>& options);

// What each rank holds and has exchanged (dsv4 bench under mpirun).
struct RankFigures {
  double rss_bytes = 0;        // VmRSS
  double rss_file_bytes = 0;   // RssFile: the mapped weights it touched
  std::map<int, uint64_t> weight_node_bytes;   // Engine::weight_bytes_per_node
  int numa_node = -1;   // the node its CPUs lie on (process_numa_node); -1: several, or unknown
  ExchangeCounters exchange;
};
// Collective through rank 0's lockstep engine: every rank's figures, in rank order.
// Errors: `engine` is not a lockstep engine.
Result<std::vector<RankFigures>> gather_rank_figures(Engine& engine);

}  // namespace dsv4::runtime

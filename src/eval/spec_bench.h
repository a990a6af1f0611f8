// `dsv4 bench --speculative`: what speculative decoding buys on this machine and checkpoint
// (issue #14): the cost of a verify step of 1..γ+1 positions against a one-token step, greedy
// decode speed without and with the checkpoint's drafter, and (since a synthetic drafter
// accepts almost nothing) decode speed at each accepted length 0..γ, measured with drafts that
// are the target's own continuation cut at that length (eval/oracle_drafts.h), next to the
// speed-up the step costs imply.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "runtime/world_engine.h"

namespace dsv4::eval {

struct SpecBenchOptions {
  std::string model_dir;
  int64_t context = 64;         // prompt tokens before decoding
  int64_t decode_tokens = 96;   // greedy tokens per decode run (the first block + 1 untimed)
  int repetitions = 5;          // timed steps per step cost (median reported)
  int threads = 0;
  bool populate = true;
  bool reread_small_pages = true;
  uint64_t seed = 1;
  // Under mpirun (runtime/mpi_world.h): both engines run on every rank, in lockstep with this
  // one (runtime::load_engines_on_world; the other ranks do not return from run_spec_bench).
  runtime::World* world = nullptr;
};

struct SpecBenchReport {
  std::string model_dir;
  std::string drafter;          // io::drafter_name
  int block = 0;                // drafts per round (Engine::max_draft_tokens)
  double step_ms = 0;           // one-token decode step, speculation off
  std::vector<double> verify_ms;   // [w-1]: verify step of w = 1..block+1 positions, commit included
  double draft_ms = 0;          // one Engine::draft call
  double plain_tok_s = 0;       // greedy decode through the scheduler, speculation off (tok/s
                                // after the first block + 1 tokens: steady state)
  double own_tok_s = 0;         // with the checkpoint's drafter (adaptive drafting off)
  double own_accepted_per_round = 0;
  double own_adaptive_tok_s = 0;  // the same drafter, adaptive drafting on (runtime/draft_planner.h)
  struct AtLength {
    int accepted = 0;           // drafts accepted per round
    double tok_s = 0;           // measured
    double speedup = 0;         // tok_s / plain_tok_s
    double implied_speedup = 0; // (accepted + 1) x step_ms / (draft_ms + verify_ms[block])
    double adaptive_tok_s = 0;  // measured with the draft count chosen per round
  };
  std::vector<AtLength> at_length;   // accepted = 0..block
};

// Errors: the model does not load or has no drafter, the lengths exceed the context.
Result<SpecBenchReport> run_spec_bench(const SpecBenchOptions& options);
nlohmann::ordered_json spec_bench_json(const SpecBenchReport& r);
std::string spec_bench_table(const SpecBenchReport& r);

}  // namespace dsv4::eval

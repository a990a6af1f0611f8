// `dsv4 bench -m DIR`: load time, prefill / decode tokens/s, weight bytes per decoded token
// against the machine's measured bandwidth, resident memory and state growth (eval/bench.h).
// `dsv4 bench --speculative -m DIR`: what speculative decoding buys (eval/spec_bench.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/generation_options.h"
#include "cli/jsonl.h"
#include "eval/bench.h"
#include "eval/spec_bench.h"

namespace dsv4::cli {

namespace {

// Prints a report as one JSON line or as its table; the exit status.
template <typename Report>
int print_report(Result<Report> r, bool json, nlohmann::ordered_json (*to_json)(const Report&),
                 std::string (*to_table)(const Report&)) {
  if (!r.ok()) {
    std::fprintf(stderr, "dsv4 bench: %s\n", r.status().to_string().c_str());
    return 1;
  }
  if (json) std::printf("%s\n", json_line(to_json(*r)).c_str());
  else std::printf("%s", to_table(*r).c_str());
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  CLI::App app{"Measure load time, prefill and decode speed, and decode against the memory-bandwidth bound"};
  eval::BenchOptions opt;
  bool json = false, skip_verify = false;
  app.add_option("-m,--model", opt.model_dir, "checkpoint directory")->required();
  app.add_option("--prefill", opt.prefill_lengths, "prompt lengths, comma-separated")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--decode-context", opt.decode_contexts, "context depths to decode at, comma-separated")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--synthetic-context", opt.synthetic_context,
               "reach each decode context by filling the state with synthetic entries of the right shapes "
               "instead of a prefill (reported as synthetic; for timing decode at long context)");
  app.add_option("--decode-tokens", opt.decode_tokens, "greedy tokens decoded at each depth")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--repetitions", opt.repetitions, "prefill runs per length (median reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", opt.threads, "OpenMP threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  bool no_populate = false, keep_page_cache = false;
  add_load_flags(app, no_populate, keep_page_cache);
  double step_timeout = runtime::World::kDefaultStepTimeout;
  add_step_timeout_flag(app, step_timeout);
  add_numa_flag(app, opt.numa);
  app.add_option("--fp8-decode", opt.fp8_decode,
                 "FP8 weight decode of the matvec: auto (probed), f16 or integer (same results; for comparison)")
      ->check(CLI::IsMember({"auto", "f16", "integer"}));
  app.add_option("--fp4-dot", opt.fp4_dot,
                 "FP4 matvec product: auto (probed), fma or bf16 (vdpbf16ps where exact; same results; for comparison)")
      ->check(CLI::IsMember({"auto", "fma", "bf16"}));
  bool speculative = false;
  eval::SpecBenchOptions spec;
  app.add_flag("--speculative", speculative,
               "instead: verify-step cost against a one-token step, and greedy decode speed without speculation, "
               "with the checkpoint's drafter, and at each accepted length 0..block (drafts taken from the target's "
               "own output)");
  app.add_option("--context", spec.context, "with --speculative: prompt tokens before decoding")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object instead of the table");
  app.add_flag("--skip-verify", skip_verify, "accepted for symmetry with run/serve; bench never hashes the files");
  CLI11_PARSE(app, argc, argv);
  opt.populate = !no_populate;
  opt.reread_small_pages = !keep_page_cache;
  opt.world = launch_world();
  const bool follower = opt.world && opt.world->rank() > 0;   // rank 0 reports
  if (speculative) {
    for (const char* other : {"--prefill", "--decode-context", "--synthetic-context", "--fp8-decode", "--fp4-dot", "--numa"})
      if (app.count(other) > 0) {
        std::fprintf(stderr, "dsv4 bench: %s does not apply to --speculative\n", other);
        return 1;
      }
    spec.model_dir = opt.model_dir;
    if (app.count("--decode-tokens") > 0) spec.decode_tokens = opt.decode_tokens;
    if (app.count("--repetitions") > 0) spec.repetitions = opt.repetitions;
    spec.threads = opt.threads;
    spec.populate = opt.populate;
    spec.reread_small_pages = opt.reread_small_pages;
    spec.world = opt.world;
    if (!json && !follower) std::fprintf(stderr, "bench --speculative: %s ...\n", spec.model_dir.c_str());
    return print_report(eval::run_spec_bench(spec), json, eval::spec_bench_json, eval::spec_bench_table);
  }
  if (app.count("--context") > 0) {
    std::fprintf(stderr, "dsv4 bench: --context needs --speculative (use --decode-context)\n");
    return 1;
  }

  if (!json && !follower) std::fprintf(stderr, "bench: %s ...\n", opt.model_dir.c_str());
  return print_report(eval::run_bench(opt), json, eval::bench_json, eval::bench_table);
}

}  // namespace dsv4::cli

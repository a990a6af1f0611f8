// `dsv4 bench -m DIR`: load time, prefill / decode tokens/s, weight bytes per decoded token
// against the machine's measured bandwidth, resident memory and state growth (eval/bench.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/generation_options.h"
#include "cli/jsonl.h"
#include "eval/bench.h"

namespace dsv4::cli {

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
  app.add_option("--fp8-decode", opt.fp8_decode,
                 "FP8 weight decode of the matvec: auto (probed), f16 or integer (same results; for comparison)")
      ->check(CLI::IsMember({"auto", "f16", "integer"}));
  app.add_option("--fp4-dot", opt.fp4_dot,
                 "FP4 matvec product: auto (probed), fma or bf16 (vdpbf16ps where exact; same results; for comparison)")
      ->check(CLI::IsMember({"auto", "fma", "bf16"}));
  app.add_flag("--json", json, "print one JSON object instead of the table");
  app.add_flag("--skip-verify", skip_verify, "accepted for symmetry with run/serve; bench never hashes the files");
  CLI11_PARSE(app, argc, argv);
  opt.populate = !no_populate;
  opt.reread_small_pages = !keep_page_cache;

  if (!json) std::fprintf(stderr, "bench: %s ...\n", opt.model_dir.c_str());
  auto report = eval::run_bench(opt);
  if (!report.ok()) {
    std::fprintf(stderr, "dsv4 bench: %s\n", report.status().to_string().c_str());
    return 1;
  }
  if (json) std::printf("%s\n", json_line(eval::bench_json(*report)).c_str());
  else std::printf("%s", eval::bench_table(*report).c_str());
  return 0;
}

}  // namespace dsv4::cli

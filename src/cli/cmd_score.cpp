// `dsv4 score -m DIR --reference REF.safetensors [--chunk N]`: conformance against the official
// reference; prints one JSON object, exit status 0 only if every check passes.
// `--dump-layer N --rows A..B [--dump FILE]` also writes block N's intermediates at positions
// A..B of the teacher-forced run (model/block_probe.h) to FILE.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/generation_options.h"
#include "eval/conformance.h"

namespace dsv4::cli {

namespace {

// "A..B" (inclusive) → [A, B + 1); "A" alone is one position.
bool parse_rows(const std::string& s, int64_t& pos0, int64_t& pos1) {
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, pos0);
  if (ec != std::errc() || pos0 < 0) return false;
  int64_t last = pos0;
  if (p != end) {
    if (end - p < 3 || p[0] != '.' || p[1] != '.') return false;
    auto [q, ec2] = std::from_chars(p + 2, end, last);
    if (ec2 != std::errc() || q != end) return false;
  }
  pos1 = last + 1;
  return last >= pos0;
}

}  // namespace

int cmd_score(int argc, char** argv) {
  CLI::App app{"Compare the engine with reference logits and hidden states from DeepSeek's official code"};
  eval::ScoreOptions opt;
  std::string rows = "0..15";
  app.add_option("-m,--model", opt.model_dir, "checkpoint directory")->required();
  app.add_option("--reference", opt.reference_path, "reference.safetensors (tolerances from reference.json beside it)")
      ->required();
  app.add_option("--chunk", opt.chunk, "prefill chunk size (0 = one shot, 1 = token by token)")->check(CLI::NonNegativeNumber);
  app.add_flag("--reference-kernels", opt.reference_kernels, "scalar reference matmul instead of the SIMD kernels");
  auto* dump_layer = app.add_option("--dump-layer", opt.dump_layer,
                                    "write this block's intermediates in the teacher-forced run (see --rows, --dump)")
                         ->check(CLI::NonNegativeNumber);
  app.add_option("--rows", rows, "positions to dump, A..B inclusive (default 0..15)")->needs(dump_layer);
  app.add_option("--dump", opt.dump_path, "safetensors file for --dump-layer (default dsv4-layer<N>.safetensors)")
      ->needs(dump_layer);
  double step_timeout = runtime::World::kDefaultStepTimeout;
  add_step_timeout_flag(app, step_timeout);
  add_numa_flag(app, opt.numa);
  CLI11_PARSE(app, argc, argv);
  if (opt.dump_layer >= 0) {
    if (!parse_rows(rows, opt.dump_pos0, opt.dump_pos1)) {
      std::fprintf(stderr, "dsv4 score: --rows wants A..B with 0 <= A <= B, got '%s'\n", rows.c_str());
      return 2;
    }
    if (opt.dump_path.empty()) opt.dump_path = "dsv4-layer" + std::to_string(opt.dump_layer) + ".safetensors";
  }
  opt.world = launch_world();
  auto report = eval::score_against_reference(opt);
  if (!report.ok()) {
    // Under mpirun every rank has the same error (agreed at load): rank 0 says it.
    if (opt.world == nullptr || opt.world->rank() == 0)
      std::fprintf(stderr, "dsv4 score: %s\n", report.status().to_string().c_str());
    return 2;
  }
  std::printf("%s\n", report->dump(2).c_str());
  return (*report)["pass"].get<bool>() ? 0 : 1;
}

}  // namespace dsv4::cli

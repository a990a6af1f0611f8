// `dsv4 score -m DIR --reference REF.safetensors [--chunk N]`: conformance against the official
// reference; prints one JSON object, exit status 0 only if every check passes.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "eval/conformance.h"

namespace dsv4::cli {

int cmd_score(int argc, char** argv) {
  CLI::App app{"Compare the engine with reference logits and hidden states from DeepSeek's official code"};
  eval::ScoreOptions opt;
  app.add_option("-m,--model", opt.model_dir, "checkpoint directory")->required();
  app.add_option("--reference", opt.reference_path, "reference.safetensors (tolerances from reference.json beside it)")
      ->required();
  app.add_option("--chunk", opt.chunk, "prefill chunk size (0 = one shot, 1 = token by token)")->check(CLI::NonNegativeNumber);
  app.add_flag("--reference-kernels", opt.reference_kernels, "scalar reference matmul instead of the SIMD kernels");
  CLI11_PARSE(app, argc, argv);
  auto report = eval::score_against_reference(opt);
  if (!report.ok()) {
    std::fprintf(stderr, "dsv4 score: %s\n", report.status().to_string().c_str());
    return 2;
  }
  std::printf("%s\n", report->dump(2).c_str());
  return (*report)["pass"].get<bool>() ? 0 : 1;
}

}  // namespace dsv4::cli

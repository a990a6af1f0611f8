// `dsv4 synth --preset tiny|flash|pro|tiny-0731|tiny-0813|flash-0731|pro-0813|tiny-v41|flash-v41 -o DIR`: write a
// random-weight checkpoint in the official format (spec §2, §3), e.g. to benchmark Flash-sized
// layers without the real weights.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/data_dir.h"
#include "eval/synth.h"

namespace dsv4::cli {

int cmd_synth(int argc, char** argv) {
  CLI::App app{"Write a random-weight DeepSeek-V4 checkpoint in the official on-disk format"};
  std::string preset_name, dir;
  eval::SynthOptions opt;
  uint64_t shard_mib = opt.max_shard_bytes >> 20;
  app.add_option("--preset", preset_name,
                 "tiny (like the shared fixture), flash or pro (real dimensions): the preview; flash-0731 or "
                 "pro-0813: the official releases with their 3-stage DSpark drafter; tiny-0731 or tiny-0813: "
                 "tiny dimensions with a release's schedule and drafter; flash-v41: DeepSeek-V4.1-Flash (nested "
                 "config, Engram tables, vision tower); tiny-v41: tiny dimensions with V4.1-Flash's schedule")
      ->required()
      ->check(CLI::IsMember({"tiny", "flash", "pro", "tiny-0731", "tiny-0813", "flash-0731", "pro-0813", "tiny-v41",
                             "flash-v41"}));
  app.add_option("--layers", opt.layers,
                 "num_hidden_layers (keeps the preset's compress_ratios schedule; a DSpark preset keeps its 3 "
                 "stages and taps the last 3 main layers; V4.1: the KV/index source and Engram layer lists keep their "
                 "ids below N)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  app.add_option("--experts", opt.experts, "n_routed_experts")->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  app.add_option("--vocab", opt.vocab, "vocab_size")->check(CLI::Range(int64_t(2), int64_t(1) << 24));
  app.add_option("--engram-vocab", opt.engram_vocab,
                 "V4.1 presets: engram_vocab_size, where the prime search of each Engram hash column starts; "
                 "each table then has about 24 x N rows (v4.1 spec §5.3.2; the release: 16000000, 98 GB a table)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 26));
  app.add_option("--set", opt.set,
                 "KEY=VALUE edit of config.json, applied last (repeatable; VALUE is JSON, e.g. head_dim=512, "
                 "compress_ratios=[4,4,0], rope_scaling.factor=8; V4.1: text_config.hidden_size=...)");
  app.add_option("--seed", opt.seed, "random seed (same seed, same bytes)");
  app.add_option("--shard-mib", shard_mib, "largest shard size in MiB")->check(CLI::Range(uint64_t(1), uint64_t(1) << 24));
  app.add_option("--expert-shards", opt.expert_groups,
                 "lay the main layers' routed experts out in shards by rank share of `mpirun -np N` (each rank then "
                 "maps only its share's shards and the shared ones; default: inventory order, where every shard may "
                 "hold some experts of every rank)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  app.add_flag("--force", opt.overwrite, "replace the *.safetensors files already in DIR");
  app.add_option("--tokenizer-dir", opt.tokenizer_dir,
                 "copy tokenizer.json + tokenizer_config.json from here (default: the official tokenizer dsv4 ships)");
  app.add_option("-o,--output", dir, "output directory")->required();
  CLI11_PARSE(app, argc, argv);
  if (opt.tokenizer_dir.empty()) {
    auto vendored = vendored_tokenizer_dir();
    if (vendored.ok()) opt.tokenizer_dir = *vendored;
    else std::fprintf(stderr, "synth: note: %s; no tokenizer is copied\n", vendored.status().to_string().c_str());
  }
  eval::parse_synth_preset(preset_name, &opt.preset);
  opt.max_shard_bytes = shard_mib << 20;
  eval::SynthReport report;
  Status s = eval::synth_checkpoint(opt, dir, &report);
  if (!s.ok()) {
    std::fprintf(stderr, "dsv4: %s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("synth: wrote %s: %zu tensors, %.3f GiB in %zu shards, %.1f s (%.0f MiB/s)%s\n", dir.c_str(),
              report.tensors, double(report.bytes) / double(1ull << 30), report.shards, report.seconds,
              double(report.bytes) / double(1 << 20) / std::max(report.seconds, 1e-9),
              report.tokenizer_copied ? ", tokenizer copied" : "");
  return 0;
}

}  // namespace dsv4::cli

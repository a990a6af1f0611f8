// `dsv4 inspect -m DIR`: open and validate a checkpoint (spec §3), print a summary.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "io/checkpoint.h"

namespace dsv4::cli {

int cmd_inspect(int argc, char** argv) {
  CLI::App app{"Load and validate a DeepSeek-V4 checkpoint directory"};
  std::string dir;
  app.add_option("-m,--model", dir, "checkpoint directory")->required();
  CLI11_PARSE(app, argc, argv);
  auto ck = io::Checkpoint::open(dir);
  if (!ck.ok()) {
    std::fprintf(stderr, "dsv4: %s\n", ck.status().to_string().c_str());
    return 1;
  }
  const auto& c = (*ck)->config();
  std::printf("checkpoint %s: %zu tensors, %llu bytes in %zu shards, all present with expected dtype and shape\n",
              dir.c_str(), (*ck)->tensor_count(), (unsigned long long)(*ck)->total_bytes(), (*ck)->shard_paths().size());
  std::printf("revision %s, drafter %s\n", io::release_name(c).c_str(), io::drafter_name(c).c_str());
  std::printf("hidden %lld, layers %lld (+%lld drafter), heads %lld x %lld, experts %lld top-%lld, vocab %lld\n",
              (long long)c.hidden_size, (long long)c.num_hidden_layers, (long long)c.drafter_blocks(),
              (long long)c.num_attention_heads, (long long)c.head_dim, (long long)c.n_routed_experts,
              (long long)c.num_experts_per_tok, (long long)c.vocab_size);
  if ((*ck)->realigned_bytes() > 0)
    std::printf("%llu bytes of tensors are not aligned to their element size in their shards (not written by the "
                "safetensors library) and are read from aligned copies in memory\n",
                (unsigned long long)(*ck)->realigned_bytes());
  return 0;
}

}  // namespace dsv4::cli

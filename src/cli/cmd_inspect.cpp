// `dsv4 inspect -m DIR`: open and validate a checkpoint (spec §3, v4.1 §3), print a summary.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "io/checkpoint.h"
#include "model/engram.h"

namespace dsv4::cli {

namespace {

std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s.empty() ? "none" : s;
}

// What sets V4.1 apart (v4.1 §1): the encoder/decoder split, shared KV, Engram, the drafter's own
// MoE and the vision tower, as the derived schedule (v4.1 §2.3) has them.
void print_v41(const io::ModelConfig& c) {
  const io::V41Config& v = c.v41;
  const int64_t L = c.num_hidden_layers;
  if (v.decoder_start < L)
    std::printf("architecture DeepseekV41ForCausalLM: layers 0-%lld causal encoder, %lld-%lld decoder (v4.1 §6)\n",
                (long long)v.decoder_start - 1, (long long)v.decoder_start, (long long)L - 1);
  else
    std::printf("architecture DeepseekV41ForCausalLM: no KV source, so no encoder/decoder split (v4.1 §6)\n");
  std::printf("KV shared across layers: compressors at %s (ratios", join(v.kv_source_layer_ids).c_str());
  for (int64_t s : v.kv_source_layer_ids) std::printf(" %d", c.ratio(s));
  std::printf("), indexers at %s, candidate blocks from %s\n", join(v.index_source_layer_ids).c_str(),
              v.candidate_source_layer_id < 0 ? "none" : std::to_string(v.candidate_source_layer_id).c_str());
  std::printf("Engram at layers %s, tables of", join(v.engram.layer_ids).c_str());
  for (int64_t rows : v.engram.num_embeddings) std::printf(" %lld", (long long)rows);
  std::printf(" rows x %lld\n", (long long)v.engram.head_dim);
  std::printf("drafter DSpark with %lld stages (speculative decoding, v4.1 §7): %lld experts top-%lld, taps the "
              "inputs of layers %s\n",
              (long long)c.drafter_blocks(), (long long)v.dspark_n_routed_experts,
              (long long)v.dspark_num_experts_per_tok, join(c.dspark.target_layer_ids).c_str());
  std::printf("vision tower present, not used: %lld layers, width %lld\n", (long long)v.vision.num_hidden_layers,
              (long long)v.vision.hidden_size);
  std::printf("text forward pass: run, serve and bench work (needs %s beside the shards, v4.1 §5.3.1)\n",
              model::kEngramTokenMapFile);
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  CLI::App app{"Load and validate a DeepSeek-V4 or V4.1 checkpoint directory"};
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
  if (c.architecture == io::Architecture::v41) print_v41(c);
  if ((*ck)->realigned_bytes() > 0)
    std::printf("%llu bytes of tensors are not aligned to their element size in their shards (not written by the "
                "safetensors library) and are read from aligned copies in memory\n",
                (unsigned long long)(*ck)->realigned_bytes());
  return 0;
}

}  // namespace dsv4::cli

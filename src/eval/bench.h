// `dsv4 bench`: load time, prefill and decode speed, the weight bytes a decoded token reads, the
// machine's measured read bandwidth and how close decode comes to the bound they imply, resident
// memory and per-sequence state growth (issue #5). Lives here rather than in the CLI so tests can
// run it on a fixture.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "eval/weight_traffic.h"
#include "runtime/world_engine.h"

namespace dsv4::eval {

struct BenchOptions {
  std::string model_dir;
  std::vector<int64_t> prefill_lengths{64, 256, 512};
  std::vector<int64_t> decode_contexts{0, 1024};   // prefilled to this depth before decoding
  // Reach each decode context by filling the sequence state with synthetic entries of the right
  // shapes (Engine::fill_synthetic) instead of prefilling it: decode at 32K+ tokens can then be
  // timed on a machine where the prefill would take hours. Reported as synthetic; the decode
  // cost is the real one, the decoded tokens are not.
  bool synthetic_context = false;
  int64_t decode_tokens = 16;                      // greedy (argmax) tokens per context
  int threads = 0;                                 // 0 = all cores
  bool populate = true;                            // EngineOptions::populate_weights
  bool reread_small_pages = true;                  // EngineOptions::reread_small_pages
  bool numa = false;                               // EngineOptions::numa
  std::string fp8_decode = "auto";                 // "auto" (probed), "f16" or "integer" (kernels::Fp8Decode)
  std::string fp4_dot = "auto";                    // "auto" (probed), "fma" or "bf16" (kernels::Fp4Dot)
  int repetitions = 3;                             // prefill runs per length (median reported)
  double repetition_budget_s = 20;                 // no further repetition once a length took this long
  bool measure_bandwidth = true;                   // the STREAM-style probe (~1 s, 512 MiB)
  uint64_t seed = 1;                               // pseudo-random prompt ids in [2, vocab)
  // Under mpirun (runtime/mpi_world.h): the engine of every rank, in lockstep with this one
  // (runtime::load_engine_on_world; the other ranks do not return from run_bench).
  runtime::World* world = nullptr;
};

struct PrefillFigure {
  int64_t tokens = 0;
  int runs = 0;
  double seconds = 0;   // median wall time of one prefill of `tokens` from an empty sequence
  double tok_s = 0;
};

struct DecodeFigure {
  int64_t context = 0;
  bool synthetic = false;   // context reached by Engine::fill_synthetic, not by a prefill
  double fill_s = 0;        // prefill (or synthetic fill) to `context` tokens, before timing decode
  int64_t tokens = 0;
  double tok_s = 0;         // 1 / median per-token latency
  double mean_tok_s = 0;    // tokens / total decode time
  double weight_GBps = 0;   // tok_s x weight bytes per token
  // Where a decoded token's time goes (Engine::time_steps), in ms per token, mean over the decoded
  // tokens: attention, ffn (router + experts) and head of every layer; other = the rest of the
  // step (embedding, hc mixes and norms between sublayers, bookkeeping).
  double attention_ms = 0, ffn_ms = 0, head_ms = 0, other_ms = 0;
};

struct BenchReport {
  std::string model_dir;
  int threads = 0;                // OpenMP threads actually used
  std::string kernels;            // matmul instruction set, FP8 decode, FP4 product: "avx512, fp8 integer, fp4 bf16 dot"
  double load_s = 0;              // Engine::load: validation, mapping, populating (BenchOptions::populate)
  double first_token_s = 0;       // first one-token step after load: starts the thread pool, sizes
                                  // the scratch and (with --no-populate) faults the touched weights in
  std::vector<PrefillFigure> prefill;
  std::vector<DecodeFigure> decode;
  WeightTraffic weights;          // bytes per decoded token
  double measured_bw_GBps = 0;    // 0 if not measured
  double decode_fraction_of_bound = 0;   // decode[shortest context]: tok_s x bytes / bandwidth
  uint64_t rss_after_load = 0, rss_end = 0, rss_peak = 0;   // /proc/self/status VmRSS, VmHWM
  // VmRSS at the end split into RssAnon (the engine's own memory: state, scratch, activations)
  // and RssFile (mapped checkpoint pages: the weights, never copied).
  uint64_t rss_anon_end = 0, rss_file_end = 0;
  // Of RssFile, the bytes mapped with 2 MiB pages (/proc/self/smaps_rollup FilePmdMapped).
  uint64_t file_pmd_mapped_end = 0;
  // The weights present in memory at the end, per NUMA node id (Engine::weight_bytes_per_node:
  // the shards' mapped pages and, with --numa, the node copy). Empty where not known.
  std::map<int, uint64_t> weight_node_bytes;
  int numa_node = -1;   // the node this process's CPUs lie on (process_numa_node); -1: several, unknown
  // Sequence::memory_bytes() growth between an empty sequence and the deepest decoded one, per
  // token, counted on a clone (its vectors hold no spare capacity) and on the live sequence.
  int64_t state_tokens = 0;
  double state_bytes_per_token = 0, state_bytes_per_token_live = 0;
  uint64_t state_fixed_bytes = 0;        // an empty sequence
  double spec_state_bytes_per_token = 0; // spec §8 for this config (V4: bf16 layout; V4.1: packed, v4.1 §8.1)
  // Under mpirun: every rank's resident memory and expert exchanges at the end, in rank order,
  // and the MoE layers of one forward pass (to turn the exchanges' rows into tokens).
  std::vector<runtime::RankFigures> ranks;
  int64_t moe_layers = 0;
};

// REQUIRES: lengths and contexts >= 0 (a prefill length >= 1), decode_tokens >= 1.
// Errors: the model does not load, a length exceeds the context limit.
Result<BenchReport> run_bench(const BenchOptions& options);

// spec §8 (bf16 reference storage): per token, CSA layers add head_dim·2/4 + index_head_dim·2/4
// bytes, HCA layers head_dim·2/128, SWA-only layers nothing. Main stack only. V4.1 (v4.1 §8.1,
// the packed layout the engine stores): each KV source adds a FP4 latent (head_dim/2 + head_dim/16
// bytes) and a FP4 index key (index_head_dim/2 + index_head_dim/32) every m tokens; 890 B released.
double spec_state_bytes_per_token(const io::ModelConfig& c);

// The decode figure at the shortest context (the one decode_fraction_of_bound is taken at), or
// null if there is none.
const DecodeFigure* shortest_decode(const BenchReport& r);

// One object: load_s, prefill [{tokens, tok_s, ...}], decode [{context, tok_s, ..., ms_per_token}],
// weight_bytes_per_token, weight_bytes (breakdown), measured_bw_GBps, decode_fraction_of_bound,
// memory {...}.
nlohmann::ordered_json bench_json(const BenchReport& r);

// A human-readable table of the same figures.
std::string bench_table(const BenchReport& r);

}  // namespace dsv4::eval

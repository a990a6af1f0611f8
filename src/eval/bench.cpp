#include "eval/bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include "core/numa_topology.h"
#include "io/checkpoint.h"
#include "kernels/cpu/fp4_pack.h"
#include "kernels/cpu/machine_probe.h"
#include "kernels/cpu/matmul.h"
#include "runtime/engine.h"

namespace dsv4::eval {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Pseudo-random ids in [2, vocab): ids 0 and 1 are BOS/EOS in V4 vocabularies, which a prompt
// would not contain mid-text. A 64-bit LCG keeps runs reproducible across machines.
std::vector<int32_t> bench_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> t(size_t(std::max<int64_t>(n, 0)));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& v : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = int32_t(2 + (s >> 33) % uint64_t(vocab - 2));
  }
  return t;
}

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Bytes of a line given in kB ("VmRSS:", "VmHWM:" of /proc/self/status, or a line of another
// /proc/self file); 0 if unavailable.
uint64_t proc_kb_line_bytes(const std::string& key, const char* file = "/proc/self/status") {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line))
    if (line.compare(0, key.size(), key) == 0) return std::stoull(line.substr(key.size())) * 1024;
  return 0;
}

}  // namespace

double spec_state_bytes_per_token(const io::ModelConfig& c) {
  double b = 0;
  if (c.architecture == io::Architecture::v41) {
    for (int64_t s : c.v41.kv_source_layer_ids)
      b += double(kernels::fp4_e4m3_bytes(c.head_dim) + kernels::fp4_e8m0_bytes(c.index_head_dim)) / c.ratio(s);
    return b;
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const io::LayerKind kind = c.layer_kind(l);
    if (kind == io::LayerKind::swa) continue;
    const int m = c.ratio(l);
    b += double(c.head_dim) * 2 / m;                           // one bf16 compressed entry per m tokens
    if (kind == io::LayerKind::csa) b += double(c.index_head_dim) * 2 / m;   // plus an indexer key
  }
  return b;
}

namespace {

Status check_options(const BenchOptions& opt) {
  if (opt.decode_tokens < 1) return Status::invalid_argument("bench: --decode-tokens must be >= 1");
  for (int64_t n : opt.prefill_lengths)
    if (n < 1) return Status::invalid_argument("bench: prefill lengths must be >= 1");
  for (int64_t n : opt.decode_contexts)
    if (n < 0) return Status::invalid_argument("bench: decode contexts must be >= 0");
  return Status::ok_status();
}

// The kernel variants the options ask for; names the active ones in r.kernels.
Status select_kernels(const BenchOptions& opt, BenchReport& r) {
  if (opt.fp8_decode == "f16") kernels::select_fp8_decode(kernels::Fp8Decode::f16);
  else if (opt.fp8_decode == "integer") kernels::select_fp8_decode(kernels::Fp8Decode::integer);
  else if (opt.fp8_decode != "auto") return Status::invalid_argument("bench: --fp8-decode must be auto, f16 or integer");
  if (opt.fp4_dot == "fma") kernels::select_fp4_dot(kernels::Fp4Dot::fma);
  else if (opt.fp4_dot == "bf16") kernels::select_fp4_dot(kernels::Fp4Dot::bf16);
  else if (opt.fp4_dot != "auto") return Status::invalid_argument("bench: --fp4-dot must be auto, fma or bf16");
  r.kernels = std::string(kernels::matmul_impl_name(kernels::active_matmul_impl())) + ", fp8 " +
              (kernels::active_fp8_decode() == kernels::Fp8Decode::integer ? "integer" : "f16") + ", fp4 " +
              (kernels::active_fp4_dot() == kernels::Fp4Dot::bf16 ? "bf16 dot" : "fma");
  return Status::ok_status();
}

Status check_lengths_fit(const BenchOptions& opt, const runtime::Engine& engine) {
  if (engine.config().vocab_size <= 2) return Status::invalid_argument("bench: vocabulary too small for ids in [2, vocab)");
  const int64_t limit = engine.max_context();
  for (int64_t n : opt.prefill_lengths)
    if (n > limit) return Status::out_of_range("bench: prefill length " + std::to_string(n) + " exceeds the context limit " + std::to_string(limit));
  for (int64_t n : opt.decode_contexts)
    if (n + opt.decode_tokens > limit)
      return Status::out_of_range("bench: decode context " + std::to_string(n) + " + " + std::to_string(opt.decode_tokens) +
                                  " tokens exceeds the context limit " + std::to_string(limit));
  return Status::ok_status();
}

// What one benchmark run feeds and reads: the engine, the prompt ids, a logits row.
struct BenchRun {
  runtime::Engine& engine;
  const BenchOptions& opt;
  std::vector<int32_t> prompt;
  std::vector<float> logits;
};

// Prefill of n prompt tokens into fresh sequences: median of up to opt.repetitions runs within
// opt.repetition_budget_s.
Result<PrefillFigure> time_prefill(BenchRun& b, int64_t n) {
  std::vector<double> times;
  double spent = 0;
  while (int(times.size()) < std::max(1, b.opt.repetitions) && (times.empty() || spent < b.opt.repetition_budget_s)) {
    auto seq = b.engine.new_sequence();
    const auto t0 = Clock::now();
    DSV4_TRY(b.engine.step(*seq, std::span(b.prompt.data(), size_t(n)), b.logits.data()));
    times.push_back(seconds_since(t0));
    spent += times.back();
  }
  PrefillFigure f;
  f.tokens = n;
  f.runs = int(times.size());
  f.seconds = median(times);
  f.tok_s = double(n) / f.seconds;
  return f;
}

// Greedy decode of opt.decode_tokens tokens after a context of ctx tokens (prefilled, or filled
// synthetically), with the step broken down by part. seq ends at the deepest position reached.
Result<DecodeFigure> time_decode(BenchRun& b, int64_t ctx, uint64_t weight_bytes, runtime::Sequence& seq) {
  const BenchOptions& opt = b.opt;
  seq.reserve(ctx + opt.decode_tokens);   // no state growth inside the timed steps
  DecodeFigure f;
  f.context = ctx;
  int32_t next = b.prompt[0];
  if (ctx > 0 && opt.synthetic_context) {
    f.synthetic = true;
    const auto t0 = Clock::now();
    DSV4_TRY(b.engine.fill_synthetic(seq, ctx, opt.seed));
    f.fill_s = seconds_since(t0);
  } else if (ctx > 0) {
    const auto t0 = Clock::now();
    DSV4_TRY(b.engine.step(seq, std::span(b.prompt.data(), size_t(ctx)), b.logits.data()));
    f.fill_s = seconds_since(t0);
    next = argmax(b.logits);
  }
  std::vector<double> times;
  model::StepTimes parts;
  {
    b.engine.time_steps(&parts);
    struct StopTiming {
      runtime::Engine& e;
      ~StopTiming() { e.time_steps(nullptr); }
    } stop{b.engine};
    for (int64_t i = 0; i < opt.decode_tokens; ++i) {
      const auto t0 = Clock::now();
      DSV4_TRY(b.engine.step(seq, std::span(&next, 1), b.logits.data()));
      times.push_back(seconds_since(t0));
      next = argmax(b.logits);   // greedy, so the decoded ids are what a real run would feed back
    }
  }
  double total = 0;
  for (double t : times) total += t;
  f.tokens = opt.decode_tokens;
  f.tok_s = 1.0 / median(times);
  f.mean_tok_s = double(opt.decode_tokens) / total;
  f.weight_GBps = f.tok_s * double(weight_bytes) / 1e9;
  const double ms_per_token = 1e3 / double(opt.decode_tokens);
  f.attention_ms = parts.attention_s * ms_per_token;
  f.ffn_ms = parts.ffn_s * ms_per_token;
  f.head_ms = parts.head_s * ms_per_token;
  f.other_ms = std::max(0.0, total * ms_per_token - f.attention_ms - f.ffn_ms - f.head_ms);
  return f;
}

// Resident memory at the end, and the per-token state growth between a fresh sequence and the
// deepest decoded one.
void read_memory_figures(const runtime::Sequence& fresh, const runtime::Sequence* deepest, BenchReport& r) {
  r.rss_end = proc_kb_line_bytes("VmRSS:");
  r.rss_anon_end = proc_kb_line_bytes("RssAnon:");
  r.rss_file_end = proc_kb_line_bytes("RssFile:");
  r.file_pmd_mapped_end = proc_kb_line_bytes("FilePmdMapped:", "/proc/self/smaps_rollup");
  r.rss_peak = proc_kb_line_bytes("VmHWM:");
  if (!deepest) return;
  // A copy-constructed vector has no spare capacity, so the clone measures what the state
  // holds; the live sequence shows what it costs with push_back growth slack.
  r.state_tokens = deepest->position();
  r.state_fixed_bytes = fresh.clone()->memory_bytes();
  r.state_bytes_per_token = (double(deepest->clone()->memory_bytes()) - double(r.state_fixed_bytes)) / double(r.state_tokens);
  r.state_bytes_per_token_live = (double(deepest->memory_bytes()) - double(fresh.memory_bytes())) / double(r.state_tokens);
}

}  // namespace

Result<BenchReport> run_bench(const BenchOptions& opt) {
  DSV4_TRY(check_options(opt));
  BenchReport r;
  r.model_dir = opt.model_dir;
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  r.threads = omp_get_max_threads();
  DSV4_TRY(select_kernels(opt, r));

  // A second, independent mapping for the byte count: the engine keeps its checkpoint private.
  // Under mpirun, of this rank's shards only (the others need not be on its node).
  {
    io::TensorFilter wanted;
    if (opt.world) {
      DSV4_ASSIGN_OR_RETURN(wanted, runtime::rank_tensors(*opt.world, opt.model_dir));
    }
    DSV4_ASSIGN_OR_RETURN(auto ck, io::Checkpoint::open(opt.model_dir, wanted));
    r.weights = weight_bytes_per_token(*ck);
  }

  runtime::EngineOptions eo;
  eo.threads = opt.threads;
  eo.populate_weights = opt.populate;
  eo.reread_small_pages = opt.reread_small_pages;
  eo.numa = opt.numa;
  eo.speculative = false;   // plain decoding: the drafter's per-step work is timed by --speculative
  auto t0 = Clock::now();
  DSV4_ASSIGN_OR_RETURN(auto engine, opt.world ? runtime::load_engine_on_world(*opt.world, opt.model_dir, eo)
                                                : runtime::Engine::load(opt.model_dir, eo));
  r.load_s = seconds_since(t0);
  r.rss_after_load = proc_kb_line_bytes("VmRSS:");
  DSV4_TRY(check_lengths_fit(opt, *engine));

  const int64_t V = engine->config().vocab_size;
  int64_t longest = 1;
  for (int64_t n : opt.prefill_lengths) longest = std::max(longest, n);
  if (!opt.synthetic_context)
    for (int64_t n : opt.decode_contexts) longest = std::max(longest, n);
  BenchRun b{*engine, opt, bench_tokens(longest, V, opt.seed), std::vector<float>(size_t(V))};

  // The first step after load starts the thread pool, sizes the scratch and, without populate,
  // faults in the weights it touches; timed on its own so that it does not inflate the
  // steady-state figures below.
  {
    auto seq = engine->new_sequence();
    t0 = Clock::now();
    DSV4_TRY(engine->step(*seq, std::span(b.prompt.data(), 1), b.logits.data()));
    r.first_token_s = seconds_since(t0);
  }

  for (int64_t n : opt.prefill_lengths) {
    DSV4_ASSIGN_OR_RETURN(PrefillFigure f, time_prefill(b, n));
    r.prefill.push_back(f);
  }

  const auto fresh = engine->new_sequence();
  std::unique_ptr<runtime::Sequence> deepest;
  for (int64_t ctx : opt.decode_contexts) {
    auto seq = engine->new_sequence();
    DSV4_ASSIGN_OR_RETURN(DecodeFigure f, time_decode(b, ctx, r.weights.total(), *seq));
    r.decode.push_back(f);
    if (!deepest || seq->position() > deepest->position()) deepest = std::move(seq);
  }
  read_memory_figures(*fresh, deepest.get(), r);
  r.weight_node_bytes = engine->weight_bytes_per_node();
  if (Result<int> node = process_numa_node(); node.ok()) r.numa_node = *node;
  r.spec_state_bytes_per_token = spec_state_bytes_per_token(engine->config());
  if (opt.world) {
    DSV4_ASSIGN_OR_RETURN(r.ranks, runtime::gather_rank_figures(*engine));
    r.moe_layers = engine->config().num_hidden_layers;
  }

  // Last, so its 512 MiB buffer does not show in the memory figures above.
  if (opt.measure_bandwidth) r.measured_bw_GBps = kernels::measure_read_bandwidth_gbps();
  if (const DecodeFigure* shortest = shortest_decode(r); shortest && r.measured_bw_GBps > 0)
    r.decode_fraction_of_bound = shortest->weight_GBps / r.measured_bw_GBps;
  return r;
}

}  // namespace dsv4::eval

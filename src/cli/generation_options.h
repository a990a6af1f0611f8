// Shared pieces of `dsv4 run`, `dsv4 chat` and `dsv4 serve`: the model directory default (the
// bundled demo model), the model's chat encoder revision, engine loading with a progress line,
// sampling flags, and a stderr progress bar that only draws on a terminal.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "runtime/engine.h"
#include "runtime/mpi_world.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "text/chat_encoding.h"
#include "text/tokenizer.h"

namespace dsv4::cli {

// Fills an empty model directory with the bundled demo model (cli/data_dir.h).
Status default_to_demo_model(std::string& dir);

struct ModelFlags {
  std::string dir;
  bool skip_verify = false;
  int threads = 0;
  bool reference_kernels = false;
  bool no_populate = false;
  bool keep_page_cache = false;
  int64_t context = 0;
  // Speculative decoding (addendum §A5): --speculative off|auto, --draft-tokens, --draft-confidence.
  std::string speculative = "auto";
  int draft_tokens = -1;            // -1: the drafter's block size
  float draft_confidence = 0.0f;
  double step_timeout = runtime::World::kDefaultStepTimeout;   // --step-timeout
  bool numa = false;                                            // --numa
};
void add_model_flags(CLI::App& app, ModelFlags& f);
// The speculative flags into the scheduler options, checked against the loaded engine's drafter:
// more draft tokens than its block, or drafts without a drafter, are errors.
Status apply_speculative_flags(const ModelFlags& f, const runtime::Engine& engine, runtime::SchedulerOptions& o);
// --no-populate and --keep-page-cache (EngineOptions::populate_weights, reread_small_pages), shared
// by run/serve/chat and bench.
void add_load_flags(CLI::App& app, bool& no_populate, bool& keep_page_cache);
// --step-timeout SECONDS (run, chat, serve, bench, score): how long a step of an mpirun launch
// may wait for the other ranks before the job ends (runtime::World::wait). Given, it sets the
// launch's World at once; `seconds` keeps the value (serve's /health deadline defaults to it).
void add_step_timeout_flag(CLI::App& app, double& seconds);
// --numa (run, chat, serve, bench, score; EngineOptions::numa): the replicated weights copied to
// the NUMA node this process is bound to, for `mpirun --map-by numa --bind-to numa`.
void add_numa_flag(CLI::App& app, bool& numa);
// The chat encoder revision of the checkpoint in `dir`: text::encoder_revision_for of its
// config.json (read before the engine loads, so that a bad --effort fails fast; it needs no
// weights, so `render -m` works on a checkpoint whose forward dsv4 cannot run).
Result<text::EncoderRevision> model_encoder_revision(const std::string& dir);
// --effort LEVEL: the reasoning effort of thinking mode, a level of the model's encoder.
CLI::Option* add_effort_flag(CLI::App& app, std::string& effort);
// Integrity check (unless skipped) then Engine::load, with a progress line on a terminal.
Result<std::unique_ptr<runtime::Engine>> load_engine(ModelFlags& f);

// --temperature --top-p --top-k --min-p --presence-penalty --frequency-penalty
// --repetition-penalty --seed
void add_sampling_flags(CLI::App& app, runtime::SamplingParams& p, std::optional<uint64_t>& seed);

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void update(int64_t done, int64_t total);
  void finish();  // clears the line

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

inline text::ChatMessage chat_message(std::string role, std::string content) {
  text::ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

struct TurnResult {
  std::vector<int32_t> emitted;   // the tokens printed (stop tokens excluded)
  runtime::GenerationEvent final;
  double prefill_seconds = 0;     // submit -> first token
  double decode_seconds = 0;      // first token -> end
  bool interrupted = false;       // a stop string ended the turn
};

// Submits `request`, prints the answer to stdout as it streams (text::OutputStream: reasoning
// framed by <think>...</think> in thinking mode, dimmed on a terminal; raw text without a
// `mode`; tool calls in the DSML tags of `revision`), with a prefill progress bar for long
// prompts on a terminal. `stops` end the turn at the first match.
Result<TurnResult> stream_turn(runtime::Scheduler& scheduler, const text::Tokenizer& tok,
                               runtime::GenerationRequest request, std::optional<text::ThinkingMode> mode,
                               text::EncoderRevision revision, const std::vector<std::string>& stops);

// "prompt 12 tokens (240.0 tok/s), generated 100 tokens (35.2 tok/s)" on stderr.
void print_turn_stats(const TurnResult& r);

}  // namespace dsv4::cli

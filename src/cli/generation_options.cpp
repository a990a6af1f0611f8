#include "cli/generation_options.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/data_dir.h"
#include "io/config.h"
#include "io/integrity.h"
#include "runtime/world_engine.h"
#include "text/output_stream.h"

namespace dsv4::cli {

Status default_to_demo_model(std::string& dir) {
  if (!dir.empty()) return Status::ok_status();
  DSV4_ASSIGN_OR_RETURN(dir, demo_model_dir());
  return Status::ok_status();
}

void add_model_flags(CLI::App& app, ModelFlags& f) {
  app.add_option("-m,--model", f.dir, "checkpoint directory (default: the bundled demo model)");
  app.add_flag("--skip-verify", f.skip_verify, "do not check the files against SHA256SUMS");
  app.add_option("-t,--threads", f.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("-c,--ctx", f.context, "context length in tokens (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_flag("--reference-kernels", f.reference_kernels, "scalar reference matmul (slow; for debugging numerics)");
  add_load_flags(app, f.no_populate, f.keep_page_cache);
  app.add_option("--speculative", f.speculative,
                 "speculative decoding with the checkpoint's drafter (DSpark, or the preview's MTP block): auto "
                 "(default: on when there is one) or off; greedy output is identical either way")
      ->check(CLI::IsMember({"auto", "off"}));
  app.add_option("--draft-tokens", f.draft_tokens, "drafts per round at most (default: the drafter's block size)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--draft-confidence", f.draft_confidence,
                 "DSpark: draft only while the confidence head's acceptance estimate stays at or above T "
                 "(0 = off, the default); changes speed, never output")
      ->check(CLI::Range(0.0f, 1.0f));
  add_step_timeout_flag(app, f.step_timeout);
  add_numa_flag(app, f.numa);
}

void add_numa_flag(CLI::App& app, bool& numa) {
  app.add_flag("--numa", numa,
               "copy the weights every rank reads (all but the routed experts) into memory of the NUMA node this "
               "process is bound to; refused unless its CPUs lie on one node (under mpirun: --map-by numa --bind-to "
               "numa, one rank per socket). Output is identical either way");
}

void add_step_timeout_flag(CLI::App& app, double& seconds) {
  app.add_option_function<double>(
         "--step-timeout",
         [&seconds](double s) {
           seconds = s;
           if (runtime::World* world = launch_world()) world->set_step_timeout(s);
         },
         "under mpirun: seconds a step may wait for the other ranks; past it the job ends with an error naming the "
         "ranks that do not answer (0 = no limit; default 120)")
      ->check(CLI::NonNegativeNumber);
}

Status apply_speculative_flags(const ModelFlags& f, const runtime::Engine& engine, runtime::SchedulerOptions& o) {
  const int block = engine.max_draft_tokens();
  if (f.draft_tokens > 0 && block == 0)
    return Status::invalid_argument(f.speculative == "off" ? "--draft-tokens needs --speculative auto"
                                                            : "--draft-tokens: this checkpoint has no drafter");
  if (f.draft_tokens > block)
    return Status::invalid_argument("--draft-tokens " + std::to_string(f.draft_tokens) +
                                    " exceeds the drafter's block of " + std::to_string(block) + " tokens");
  if (f.draft_confidence > 0 && engine.config().drafter() != io::DrafterKind::dspark)
    return Status::invalid_argument("--draft-confidence needs a DSpark drafter (this checkpoint's: " +
                                    io::drafter_name(engine.config()) + ")");
  o.draft_tokens = f.draft_tokens;
  o.draft_confidence = f.draft_confidence;
  return Status::ok_status();
}

Result<text::EncoderRevision> model_encoder_revision(const std::string& dir) {
  DSV4_ASSIGN_OR_RETURN(io::ModelConfig config, io::load_config(dir + "/config.json"));
  return text::encoder_revision_for(config);
}

CLI::Option* add_effort_flag(CLI::App& app, std::string& effort) {
  std::string help = "reasoning effort in thinking mode, a level of the checkpoint's chat encoder (";
  for (auto [release, r] : {std::pair{"preview", text::EncoderRevision::v4},
                            std::pair{"0731 / 0813", text::EncoderRevision::v4_flash_0731},
                            std::pair{"V4.1", text::EncoderRevision::v41}}) {
    help += release;
    help += ": " + text::effort_level_names(r) + ", default " + std::string(text::default_effort_level(r)) + "; ";
  }
  help.replace(help.size() - 2, 2, ")");
  return app.add_option("--effort", effort, help);
}

void add_load_flags(CLI::App& app, bool& no_populate, bool& keep_page_cache) {
  app.add_flag("--no-populate", no_populate,
               "do not read the weights into memory at load; pages are faulted in on first use (default: populate "
               "when the model fits in RAM)");
  app.add_flag("--keep-page-cache", keep_page_cache,
               "when populating, do not re-read shards that the page cache holds in 4 KiB pieces (by default they "
               "are read again once so that they are mapped with 2 MiB pages: faster decode)");
}

Result<std::unique_ptr<runtime::Engine>> load_engine(ModelFlags& f) {
  DSV4_TRY(default_to_demo_model(f.dir));
  runtime::World* world = launch_world();
  // Under mpirun a rank checks only the files it maps: the other ranks' shards need not be here.
  std::set<std::string> others;
  if (world) {
    DSV4_ASSIGN_OR_RETURN(const io::TensorFilter wanted, runtime::rank_tensors(*world, f.dir));
    DSV4_ASSIGN_OR_RETURN(others, io::unneeded_shards(f.dir, wanted));
  }
  DSV4_TRY(io::ensure_verified(f.dir, f.skip_verify, nullptr, others));
  runtime::EngineOptions o;
  o.threads = f.threads;
  o.max_context = f.context;
  o.reference_kernels = f.reference_kernels;
  o.populate_weights = !f.no_populate;
  o.reread_small_pages = !f.keep_page_cache;
  o.speculative = f.speculative != "off";
  o.numa = f.numa;
  // A follower rank of an MPI launch does not come back from here (runtime/world_engine.h).
  if (world && world->rank() > 0) return runtime::load_engine_on_world(*world, f.dir, o);
  // Engine::load reports no progress of its own: show the elapsed time while it runs.
  ProgressBar bar("loading " + f.dir);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  const auto start = std::chrono::steady_clock::now();
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return done; })) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      bar.update(ms.count() / 100, 0);
    }
  });
  auto engine = world ? runtime::load_engine_on_world(*world, f.dir, o) : runtime::Engine::load(f.dir, o);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  ticker.join();
  bar.finish();
  if (!engine.ok()) return engine.status().with_context(f.dir);
  return engine;
}

void add_sampling_flags(CLI::App& app, runtime::SamplingParams& p, std::optional<uint64_t>& seed) {
  app.add_option("--temperature", p.temperature, "sampling temperature, 0 = greedy (default 1.0, DeepSeek's)");
  app.add_option("--top-p", p.top_p, "nucleus sampling mass (default 1.0)");
  app.add_option("--top-k", p.top_k, "keep the k most likely tokens (0 = off)");
  app.add_option("--min-p", p.min_p, "drop tokens below min-p x the best probability (0 = off)");
  app.add_option("--presence-penalty", p.presence_penalty, "OpenAI presence penalty [-2, 2]");
  app.add_option("--frequency-penalty", p.frequency_penalty, "OpenAI frequency penalty [-2, 2]");
  app.add_option("--repetition-penalty", p.repetition_penalty, "CTRL repetition penalty (1 = off)");
  app.add_option("--seed", seed, "random seed (same seed, same output)");
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) == 1) {}
ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, int64_t total) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && (total == 0 || done < total)) return;
  last_ = now;
  drawn_ = true;
  if (total > 0) {
    constexpr int kWidth = 30;
    const int filled = int(done * kWidth / total);
    std::fprintf(stderr, "\r\033[K%s [%.*s%*s] %lld/%lld", label_.c_str(), filled, "##############################",
                 kWidth - filled, "", (long long)done, (long long)total);
  } else {
    static const char* spin = "|/-\\";
    std::fprintf(stderr, "\r\033[K%s %c %.1fs", label_.c_str(), spin[done % 4], double(done) / 10.0);
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace dsv4::cli

namespace dsv4::cli {

Result<TurnResult> stream_turn(runtime::Scheduler& scheduler, const text::Tokenizer& tok,
                               runtime::GenerationRequest request, std::optional<text::ThinkingMode> mode,
                               text::EncoderRevision revision, const std::vector<std::string>& stops) {
  using Clock = std::chrono::steady_clock;
  const bool tty = isatty(STDOUT_FILENO) == 1;
  // Prompts longer than one scheduler step get a progress bar.
  request.report_prefill_progress = int64_t(request.prompt.size()) > scheduler.options().step_token_budget;
  const auto start = Clock::now();
  DSV4_ASSIGN_OR_RETURN(auto gen, scheduler.submit(std::move(request)));

  TurnResult r;
  text::OutputStream out(text::token_decoder(tok), mode ? text::completion_output_parser(*mode, revision) : nullptr,
                         stops);
  bool in_reasoning = false;
  ProgressBar bar("prefill");
  Clock::time_point first = start;
  bool got_first = false;

  auto show = [&](const text::OutputStream::Piece& piece, bool final) {
    if (!mode) {
      std::fwrite(piece.text.data(), 1, piece.text.size(), stdout);
      return;
    }
    for (const auto& e : piece.events) {
      if (e.kind == text::CompletionEventKind::reasoning_delta) {
        if (!in_reasoning) {
          std::fputs(tty ? "\033[2m" : "<think>\n", stdout);
          in_reasoning = true;
        }
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        continue;
      }
      if (in_reasoning) {
        std::fputs(tty ? "\033[0m\n\n" : "\n</think>\n\n", stdout);
        in_reasoning = false;
      }
      if (e.kind == text::CompletionEventKind::content_delta) std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      else if (e.kind == text::CompletionEventKind::tool_call_started) std::printf("[tool call %s ", e.name.c_str());
      else if (e.kind == text::CompletionEventKind::tool_call_arguments) std::printf("%s", e.text.c_str());
      else if (e.kind == text::CompletionEventKind::tool_call_finished) std::printf("]\n");
    }
    if (final && in_reasoning) std::fputs(tty ? "\033[0m\n" : "\n</think>\n", stdout);
  };

  for (;;) {
    auto ev = gen->next(std::chrono::milliseconds(200));
    if (!ev) continue;
    if (ev->kind == runtime::GenerationEvent::Kind::prefill_progress) {
      bar.update(ev->prefill_done, ev->prompt_tokens);
      continue;
    }
    if (ev->kind == runtime::GenerationEvent::Kind::token) {
      if (!got_first) {
        got_first = true;
        first = Clock::now();
        bar.finish();
      }
      text::OutputStream::Piece piece;
      if (!out.push(ev->sampled.token, piece)) continue;  // in flight when a stop string matched
      r.emitted.push_back(ev->sampled.token);
      show(piece, false);
      std::fflush(stdout);
      if (out.stopped()) gen->cancel();
      continue;
    }
    r.final = *ev;
    break;
  }
  bar.finish();
  text::OutputStream::Piece tail;
  out.finish(tail);
  show(tail, true);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  const auto end = Clock::now();
  if (!got_first) first = end;
  r.prefill_seconds = std::chrono::duration<double>(first - start).count();
  r.decode_seconds = std::chrono::duration<double>(end - first).count();
  r.interrupted = out.stopped();
  if (r.final.finish == runtime::FinishReason::error) return r.final.status;
  return r;
}

void print_turn_stats(const TurnResult& r) {
  const auto& f = r.final;
  const int64_t fed = f.prompt_tokens - f.cached_tokens;
  const double pps = r.prefill_seconds > 0 ? double(fed) / r.prefill_seconds : 0;
  // The first token comes out of the prefill step; the rest are decode steps.
  const double gps = r.decode_seconds > 0 && f.generated_tokens > 1 ? double(f.generated_tokens - 1) / r.decode_seconds : 0;
  std::fprintf(stderr, "prompt %lld tokens", (long long)f.prompt_tokens);
  if (f.cached_tokens > 0) std::fprintf(stderr, " (%lld reused)", (long long)f.cached_tokens);
  std::fprintf(stderr, ", %.1f tok/s; generated %lld tokens, %.1f tok/s", pps, (long long)f.generated_tokens, gps);
  if (f.drafted_tokens > 0)
    std::fprintf(stderr, " (drafts: %lld of %lld accepted, %.2f per round)", (long long)f.accepted_tokens,
                 (long long)f.drafted_tokens, double(f.accepted_tokens) / double(f.spec_rounds));
  std::fprintf(stderr, "; finish: %s\n", r.interrupted ? "stop" : runtime::finish_reason_name(f.finish));
}

}  // namespace dsv4::cli

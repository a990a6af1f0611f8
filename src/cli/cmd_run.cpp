// `dsv4 run [-m DIR] -p "..."`: one prompt, the answer streamed to stdout, then prompt and
// generation token counts and speeds on stderr. The chat template is applied unless --raw, in
// the checkpoint's encoder revision and at the --effort level (checked before the model loads).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/data_dir.h"
#include "cli/generation_options.h"
#include "runtime/scheduler.h"
#include "text/chat_encoding.h"
#include "text/output_steering.h"
#include "text/tokenizer.h"

namespace dsv4::cli {

int cmd_run(int argc, char** argv) {
  CLI::App app{"Generate an answer to one prompt"};
  ModelFlags model;
  add_model_flags(app, model);
  std::string prompt, system, effort;
  bool think = false, no_think = false, raw = false, ignore_eos = false;
  int64_t max_tokens = 512;
  std::vector<std::string> stops;
  runtime::SamplingParams sampling;
  std::optional<uint64_t> seed;
  app.add_option("-p,--prompt", prompt, "the prompt")->required();
  app.add_option("-s,--system", system, "system prompt (chat template only)");
  auto* o_think = app.add_flag("--think", think, "thinking mode (the default)");
  auto* o_no = app.add_flag("--no-think", no_think, "non-thinking (chat) mode");
  auto* o_effort = add_effort_flag(app, effort);
  auto* o_max = app.add_flag_callback("--think-max", [&effort] { effort = "max"; }, "same as --effort max");
  o_think->excludes(o_no);
  o_no->excludes(o_effort)->excludes(o_max);
  o_max->excludes(o_effort);
  auto* o_raw = app.add_flag("--raw", raw, "send the prompt as-is (BOS + text), without the chat template");
  o_raw->excludes(o_effort)->excludes(o_max);
  app.add_option("-n,--max-tokens", max_tokens, "most tokens to generate (0 = until the context is full)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--stop", stops, "stop string (repeatable)");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating after the end-of-sentence token");
  add_sampling_flags(app, sampling, seed);
  CLI11_PARSE(app, argc, argv);
  sampling.seed = seed;
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "dsv4 run: %s\n", s.to_string().c_str());
    return 1;
  };
  if (Status s = runtime::validate_sampling(sampling); !s.ok()) return fail(s);
  if (Status s = default_to_demo_model(model.dir); !s.ok()) return fail(s);

  auto revision = model_encoder_revision(model.dir);
  if (!revision.ok()) return fail(revision.status());
  auto tok = load_cli_tokenizer("", model.dir);
  if (!tok.ok()) return fail(tok.status());
  // Raw text has no chat mode: it is shown as it comes, unsteered.
  text::Thinking thinking{no_think ? text::ThinkingMode::chat : text::ThinkingMode::thinking, effort};
  std::optional<text::ThinkingMode> mode;
  if (!raw) mode = thinking.mode;
  std::vector<int32_t> ids;
  if (raw) {
    ids = text::raw_prompt_ids(*tok, prompt);
  } else {
    std::vector<text::ChatMessage> messages;
    if (!system.empty()) messages.push_back(chat_message("system", system));
    messages.push_back(chat_message("user", prompt));
    text::ChatOptions o;
    o.revision = *revision;
    o.thinking = thinking;
    auto rendered = text::render_chat(messages, o);
    if (!rendered.ok()) return fail(rendered.status());
    ids = tok->encode(*rendered);
  }

  auto engine = load_engine(model);
  if (!engine.ok()) return fail(engine.status());
  runtime::SchedulerOptions so;
  if (Status s = apply_speculative_flags(model, **engine, so); !s.ok()) return fail(s);
  so.max_running = 1;
  so.max_queued = 1;
  so.cache_bytes = 0;
  runtime::Scheduler scheduler(**engine, so);
  runtime::GenerationRequest req;
  req.prompt = std::move(ids);
  req.sampling = sampling;
  req.max_tokens = max_tokens;
  req.ignore_eos = ignore_eos;
  if (mode) text::apply_steering(text::chat_steering(*tok, *revision, thinking), req);
  auto r = stream_turn(scheduler, *tok, std::move(req), mode, *revision, stops);
  if (!r.ok()) return fail(r.status());
  print_turn_stats(*r);
  return 0;
}

}  // namespace dsv4::cli

// `dsv4 chat [-m DIR]`: an interactive multi-turn session. The conversation stays in the
// engine: each turn feeds only the new tokens (the previous turn's sequence is continued through
// the scheduler's prefix cache), so history is never prefilled twice. Commands: /think,
// /nothink, /reset, /quit. The prompt follows the checkpoint's encoder revision; --effort sets
// the reasoning effort of thinking mode, written where the conversation starts (if it starts in
// thinking mode: the official encoder writes it at message index 0 only).
//
// Differs from re-rendering the whole conversation each turn: in thinking mode the official
// encoder drops earlier turns' reasoning, which would change the prefix and force a full
// re-prefill; here earlier reasoning stays in the context, as it was generated.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "cli/data_dir.h"
#include "cli/generation_options.h"
#include "runtime/scheduler.h"
#include "text/chat_encoding.h"
#include "text/chat_tokens.h"
#include "text/output_steering.h"
#include "text/tokenizer.h"

namespace dsv4::cli {

int cmd_chat(int argc, char** argv) {
  CLI::App app{"Interactive multi-turn chat (/think, /nothink, /reset, /quit)"};
  ModelFlags model;
  add_model_flags(app, model);
  std::string system, effort;
  bool no_think = false;
  int64_t max_tokens = 1024;
  runtime::SamplingParams sampling;
  std::optional<uint64_t> seed;
  app.add_option("-s,--system", system, "system prompt");
  app.add_flag("--no-think", no_think, "start in non-thinking (chat) mode");
  add_effort_flag(app, effort);
  app.add_option("-n,--max-tokens", max_tokens, "most tokens per answer (0 = until the context is full)")
      ->check(CLI::NonNegativeNumber);
  add_sampling_flags(app, sampling, seed);
  CLI11_PARSE(app, argc, argv);
  sampling.seed = seed;
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "dsv4 chat: %s\n", s.to_string().c_str());
    return 1;
  };
  if (Status s = runtime::validate_sampling(sampling); !s.ok()) return fail(s);
  if (Status s = default_to_demo_model(model.dir); !s.ok()) return fail(s);
  auto revision = model_encoder_revision(model.dir);
  if (!revision.ok()) return fail(revision.status());
  if (Status s = text::check_effort(*revision, effort); !s.ok()) return fail(s);
  auto tok = load_cli_tokenizer("", model.dir);
  if (!tok.ok()) return fail(tok.status());
  const int32_t eos = tok->token_id(text::chat::kEos).value_or(1);
  auto engine = load_engine(model);
  if (!engine.ok()) return fail(engine.status());
  runtime::SchedulerOptions so;
  if (Status s = apply_speculative_flags(model, **engine, so); !s.ok()) return fail(s);
  so.max_running = 1;
  so.max_queued = 1;
  so.snapshot_interval = 0;  // each turn continues the last one's final state, which the cache keeps
  runtime::Scheduler scheduler(**engine, so);

  const bool tty = isatty(STDIN_FILENO) == 1;
  text::Thinking thinking{no_think ? text::ThinkingMode::chat : text::ThinkingMode::thinking, effort};
  std::vector<int32_t> history;  // every token of the conversation, ready to be continued
  if (tty)
    std::fprintf(stderr, "dsv4 chat: %s mode; /think, /nothink, /reset, /quit\n", thinking.on() ? "thinking" : "chat");
  std::string line;
  while (true) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/think" || line == "/nothink") {
      thinking.mode = line == "/think" ? text::ThinkingMode::thinking : text::ThinkingMode::chat;
      std::fprintf(stderr, "[%s mode]\n", thinking.on() ? "thinking" : "chat");
      continue;
    }
    if (line == "/reset") {
      history.clear();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    std::vector<text::ChatMessage> turn;
    if (history.empty() && !system.empty()) turn.push_back(chat_message("system", system));
    turn.push_back(chat_message("user", line));
    text::ChatOptions o;
    o.revision = *revision;
    o.thinking = thinking;
    o.add_bos = history.empty();
    // The effort prefix (and V4.1's leading <｜System｜>) opens the conversation (message index 0,
    // addendum §A6.1, v4.1 §11.2): only the first turn's rendering writes it; later turns
    // continue after it.
    o.continuation = !history.empty();
    auto rendered = text::render_chat(turn, o);
    if (!rendered.ok()) return fail(rendered.status());
    std::vector<int32_t> prompt = history;
    auto ids = tok->encode(*rendered);
    prompt.insert(prompt.end(), ids.begin(), ids.end());
    if (int64_t(prompt.size()) + 1 >= scheduler.max_context()) {
      std::fprintf(stderr, "[the conversation fills the context (%lld tokens); /reset to start over]\n",
                   (long long)scheduler.max_context());
      continue;
    }
    runtime::GenerationRequest req;
    req.prompt = prompt;
    req.sampling = sampling;
    req.max_tokens = max_tokens;
    text::apply_steering(text::chat_steering(*tok, *revision, thinking), req);
    auto r = stream_turn(scheduler, *tok, std::move(req), thinking.mode, *revision, {});
    if (!r.ok()) return fail(r.status());
    print_turn_stats(*r);
    // The turn closes with EOS, as the chat format writes a finished assistant message.
    history = std::move(prompt);
    history.insert(history.end(), r->emitted.begin(), r->emitted.end());
    history.push_back(eos);
  }
  return 0;
}

}  // namespace dsv4::cli

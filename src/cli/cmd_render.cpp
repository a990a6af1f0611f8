// `dsv4 render`: JSON Lines {"messages": [...], "options": {...}} -> {"prompt": "..."} using the
// official chat format (spec §7.2; V4.1: v4.1 §11.2). With --ids, also the token ids of the
// prompt. With -m, the checkpoint's encoder revision is the default (a line's options.revision
// still names one); only its config.json (and tokenizer.json for --ids) is read.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/data_dir.h"
#include "cli/generation_options.h"
#include "cli/jsonl.h"
#include "text/chat_encoding.h"
#include "text/tokenizer.h"

namespace dsv4::cli {

int cmd_render(int argc, char** argv) {
  CLI::App app{"Render chat messages (JSON Lines on stdin) to DeepSeek-V4 prompts"};
  bool with_ids = false;
  std::string tokenizer_file, model_dir;
  app.add_flag("--ids", with_ids, "also output the prompt's token ids");
  app.add_option("--tokenizer", tokenizer_file, "tokenizer.json for --ids (default: vendored official)");
  app.add_option("-m,--model", model_dir,
                 "checkpoint directory: its chat encoder revision is the default of options.revision, and its "
                 "tokenizer.json is used for --ids");
  CLI11_PARSE(app, argc, argv);
  // Without -m, options.revision alone selects the encoder (default v4, the preview's).
  text::EncoderRevision revision = text::EncoderRevision::v4;
  if (!model_dir.empty()) {
    auto r = model_encoder_revision(model_dir);
    if (!r.ok()) {
      std::fprintf(stderr, "dsv4: %s\n", r.status().to_string().c_str());
      return 2;
    }
    revision = *r;
  }
  std::optional<text::Tokenizer> tok;
  if (with_ids) {
    auto t = load_cli_tokenizer(tokenizer_file, model_dir);
    if (!t.ok()) {
      std::fprintf(stderr, "dsv4: %s\n", t.status().to_string().c_str());
      return 2;
    }
    tok = std::move(t).value();
  }
  return run_jsonl("render", [&](const nlohmann::ordered_json& in) -> Result<nlohmann::ordered_json> {
    if (!in.contains("messages")) return Status::invalid_argument("missing \"messages\"");
    DSV4_ASSIGN_OR_RETURN(auto messages, text::messages_from_json(in["messages"]));
    DSV4_ASSIGN_OR_RETURN(auto options,
                          text::options_from_json(in.value("options", nlohmann::ordered_json()), revision));
    // Request-level tools (OpenAI shape) may also sit next to the messages.
    if (in.contains("tools") && !in["tools"].is_null()) {
      DSV4_ASSIGN_OR_RETURN(options.tools, text::tools_from_json(in["tools"], "tools"));
    }
    DSV4_ASSIGN_OR_RETURN(std::string prompt, text::render_chat(messages, options));
    nlohmann::ordered_json out{{"prompt", prompt}};
    if (tok) out["ids"] = tok->encode(prompt);
    return out;
  });
}

}  // namespace dsv4::cli

// `dsv4 parse-completion`: JSON Lines {"completion": "...", "thinking_mode": "thinking"|"chat",
// "revision": "v4"|"v4-flash-0731"|"v4.1"} -> the parsed assistant message (reasoning_content,
// content, tool_calls; spec §7.3). The revision (default v4) decides the DSML tags (v4.1 §11.3).
#include <CLI/CLI.hpp>

#include "cli/jsonl.h"
#include "text/completion_parser.h"

namespace dsv4::cli {

int cmd_parse_completion(int argc, char** argv) {
  CLI::App app{"Parse generated DeepSeek-V4 text (JSON Lines on stdin) into assistant messages"};
  CLI11_PARSE(app, argc, argv);
  return run_jsonl("parse-completion", [](const nlohmann::ordered_json& in) -> Result<nlohmann::ordered_json> {
    if (!in.contains("completion") || !in["completion"].is_string())
      return Status::invalid_argument("missing string \"completion\"");
    text::ThinkingMode mode = text::ThinkingMode::thinking;
    if (in.contains("thinking_mode")) {
      const auto& m = in["thinking_mode"];
      DSV4_ASSIGN_OR_RETURN(mode, text::thinking_mode_named(m.is_string() ? m.get<std::string>() : ""));
    }
    text::EncoderRevision revision = text::EncoderRevision::v4;
    if (in.contains("revision")) {
      const auto& v = in["revision"];  // a non-string names no revision (the error lists the names)
      DSV4_ASSIGN_OR_RETURN(revision, text::encoder_revision_named(v.is_string() ? v.get<std::string>() : ""));
    }
    return text::completion_to_json(text::CompletionParser::parse(in["completion"].get<std::string>(), mode, revision));
  });
}

}  // namespace dsv4::cli

// `dsv4 parse-completion`: JSON Lines {"completion": "...", "thinking_mode": "thinking"|"chat"}
// -> the parsed assistant message (reasoning_content, content, tool_calls; spec §7.3).
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
      if (in["thinking_mode"] == "chat") mode = text::ThinkingMode::chat;
      else if (in["thinking_mode"] != "thinking") return Status::invalid_argument("thinking_mode must be \"chat\" or \"thinking\"");
    }
    return text::completion_to_json(text::CompletionParser::parse(in["completion"].get<std::string>(), mode));
  });
}

}  // namespace dsv4::cli

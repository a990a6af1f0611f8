// A tool the model may call, typed: what the chat encoder shows the model (its "## Tools"
// section, spec §7.3, PROMPT-FORMAT.md §5) and what the DSML constraint enforces. Each HTTP API
// reads its own tool shape into this once (server/openai.cpp, anthropic.cpp, responses.cpp); the
// encoder's own JSON input (`dsv4 render`, the official test vectors) is read by tools_from_json.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "text/json_schema.h"

namespace dsv4::text {

struct ToolDefinition {
  std::string name;
  std::optional<std::string> description;
  // The JSON schema of the arguments (null = none): the one part of a tool that stays JSON. The
  // encoder writes it as given, keys in the client's order, as the official encoder dumps it.
  nlohmann::ordered_json parameters;
  // strict: true: the grammar the arguments must follow while the model writes a call
  // (text/dsml_constraint.h); null = free arguments. Not shown to the model.
  std::shared_ptr<const JsonGrammar> strict;

  bool operator==(const ToolDefinition&) const = default;
};

// Tools as the official encoder takes them: an array of OpenAI tools ({"type": "function",
// "function": {...}}) or of bare function objects, each with a string "name", an optional string
// "description" and an optional "parameters" schema (other keys are not shown to the model).
// null is no tools. invalid_argument names the element at `where` ("tools[1]").
Result<std::vector<ToolDefinition>> tools_from_json(const nlohmann::ordered_json& tools, const std::string& where);

// The line of the tools section that describes `tool`: the function object {"name",
// "description", "parameters"} as Python's json.dumps writes it (spec §7.3).
std::string tool_schema_line(const ToolDefinition& tool);

// The tool named `name`, or null.
const ToolDefinition* find_tool(const std::vector<ToolDefinition>& tools, std::string_view name);

}  // namespace dsv4::text

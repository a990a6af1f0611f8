// Structured outputs of the three APIs, parsed into one StructuredOutput (server/api.h):
//   Chat Completions  response_format {type: text | json_object | json_schema, json_schema: {name,
//                     description, schema, strict}}
//   Responses         text.format {type: text | json_object | json_schema, name, description,
//                     schema, strict}
//   Anthropic         output_config.format {type: json_schema, schema}
// json_object is any JSON object; json_schema compiles the schema (text/json_schema.h has the
// subset; anything else is a 400 naming the keyword). Enforcement is the same whether `strict`
// is true or not: the answer always follows the schema (objects with `properties` hold only
// declared properties).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "server/api.h"

namespace dsv4::server {

// `format` is the request's object at `where` ("response_format"); flat = the Responses shape
// (name/schema/strict beside type) rather than Chat Completions' json_schema sub-object.
Result<StructuredOutput> parse_openai_format(const nlohmann::ordered_json& format, const std::string& where, bool flat);
// Anthropic's output_config.format.
Result<StructuredOutput> parse_anthropic_format(const nlohmann::ordered_json& format, const std::string& where);

// What a structured answer cannot be combined with: tools the model may call (a structured
// answer leaves it no way to open a tool call; tool_choice "none" is fine), and a final
// assistant message the answer continues (a prefill: the JSON would start mid-text). `field`
// names the request's format field.
Status check_structured_output(const ChatRequest& r, const std::string& field);

// A tool's `strict` at `where` (`tool` is its JSON): a boolean; true compiles the tool's
// parameters schema (t.parameters, read before, at `schema_where`; null = no parameters) into
// t.strict, its arguments then enforced while the model writes a call. A schema that cannot be
// enforced is a 400 naming the problem (an unsupported keyword, free keys instead of properties:
// text/dsml_matcher.h).
Status read_tool_strict(const nlohmann::ordered_json& tool, const std::string& where, const std::string& schema_where,
                        text::ToolDefinition& t);

}  // namespace dsv4::server

#include "server/structured_output.h"

#include "text/dsml_matcher.h"

namespace dsv4::server {
namespace {

using ojson = nlohmann::ordered_json;

Status bad(const std::string& m) { return Status::invalid_argument(m); }

Result<StructuredOutput> json_schema_output(const ojson& schema, const std::string& where, ojson prompt_format) {
  // The compiler reads the schema as plain JSON (key order does not matter to validation).
  DSV4_ASSIGN_OR_RETURN(auto grammar, text::compile_json_schema(nlohmann::json(schema), where));
  return StructuredOutput{std::move(grammar), std::move(prompt_format)};
}


}  // namespace

Result<StructuredOutput> parse_openai_format(const ojson& format, const std::string& where, bool flat) {
  if (!format.is_object() || !format.contains("type") || !format["type"].is_string())
    return bad("'" + where + "' must be an object with a string 'type'");
  const std::string type = format["type"];
  if (type == "text") return StructuredOutput{};
  if (type == "json_object") return StructuredOutput{text::json_object_grammar(), format};
  if (type != "json_schema")
    return bad("'" + where + ".type' must be text, json_object or json_schema (got '" + type + "')");
  const std::string at = flat ? where : where + ".json_schema";
  if (!flat && (!format.contains("json_schema") || !format["json_schema"].is_object()))
    return bad("'" + at + "' must be an object with 'name' and 'schema'");
  const ojson& js = flat ? format : format["json_schema"];
  if (!js.contains("name") || !js["name"].is_string() || js["name"].get<std::string>().empty())
    return bad("'" + at + ".name' must be a non-empty string");
  if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean())
    return bad("'" + at + ".strict' must be a boolean");
  if (js.contains("description") && !js["description"].is_null() && !js["description"].is_string())
    return bad("'" + at + ".description' must be a string");
  if (!js.contains("schema") || !js["schema"].is_object()) return bad("'" + at + ".schema' must be a JSON Schema object");
  return json_schema_output(js["schema"], at + ".schema", format);
}

Result<StructuredOutput> parse_anthropic_format(const ojson& format, const std::string& where) {
  if (!format.is_object() || !format.contains("type") || format["type"] != "json_schema")
    return bad("'" + where + "' must be {\"type\": \"json_schema\", \"schema\": {...}}");
  for (const auto& [k, v] : format.items())
    if (k != "type" && k != "schema") return bad("'" + where + "." + k + "': unknown field");
  if (!format.contains("schema") || !format["schema"].is_object())
    return bad("'" + where + ".schema' must be a JSON Schema object");
  return json_schema_output(format["schema"], where + ".schema", format);
}

Status check_structured_output(const ChatRequest& r, const std::string& field) {
  if (!r.output.grammar) return {};
  if (!r.tools.empty() && r.tool_choice != ToolChoice::none)
    return bad("'" + field +
               "' together with 'tools' is not supported: a structured answer leaves the model no way to call a "
               "tool (send tool_choice \"none\", or leave one of them out)");
  if (!r.messages.empty() && r.messages.back().prefix)
    return bad("'" + field + "' cannot continue a final assistant message (prefill): the answer must be the whole value");
  return {};
}

Status read_tool_strict(const ojson& tool, const std::string& where, const std::string& schema_where,
                        text::ToolDefinition& t) {
  auto it = tool.find("strict");
  if (it == tool.end() || it->is_null()) return {};
  if (!it->is_boolean()) return bad("'" + where + ".strict' must be a boolean");
  if (!it->get<bool>()) return {};
  const ojson none = {{"type", "object"}, {"properties", ojson::object()}};
  DSV4_ASSIGN_OR_RETURN(auto grammar,
                        text::compile_json_schema(nlohmann::json(t.parameters.is_null() ? none : t.parameters),
                                                  schema_where));
  DSV4_TRY(text::check_strict_arguments(*grammar, schema_where));
  t.strict = std::move(grammar);
  return {};
}

}  // namespace dsv4::server

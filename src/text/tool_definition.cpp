#include "text/tool_definition.h"

#include "text/py_json.h"

namespace dsv4::text {

using ojson = nlohmann::ordered_json;

Result<std::vector<ToolDefinition>> tools_from_json(const ojson& tools, const std::string& where) {
  if (tools.is_null()) return std::vector<ToolDefinition>();
  if (!tools.is_array()) return Status::invalid_argument(where + " must be an array");
  std::vector<ToolDefinition> out;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    const ojson& t = tools[i];
    const ojson& f = (t.is_object() && t.contains("function") && t["function"].is_object()) ? t["function"] : t;
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string())
      return Status::invalid_argument(w + ": a tool must be a function object with a string \"name\"");
    ToolDefinition tool;
    tool.name = f["name"];
    if (auto d = f.find("description"); d != f.end() && !d->is_null()) {
      if (!d->is_string()) return Status::invalid_argument(w + ": \"description\" must be a string");
      tool.description = d->get<std::string>();
    }
    if (auto p = f.find("parameters"); p != f.end()) tool.parameters = *p;
    out.push_back(std::move(tool));
  }
  return out;
}

std::string tool_schema_line(const ToolDefinition& tool) {
  ojson fn = {{"name", tool.name}};
  if (tool.description) fn["description"] = *tool.description;
  if (!tool.parameters.is_null()) fn["parameters"] = tool.parameters;
  return py_json_dumps(fn);
}

const ToolDefinition* find_tool(const std::vector<ToolDefinition>& tools, std::string_view name) {
  for (const ToolDefinition& t : tools)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace dsv4::text

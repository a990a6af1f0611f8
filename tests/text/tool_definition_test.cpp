// Typed tools: the encoder's JSON reader, and the schema line the tools section shows (spec §7.3).
#include "text/tool_definition.h"

#include <gtest/gtest.h>

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

TEST(ToolDefinition, ReadsOpenAiToolsAndBareFunctions) {
  auto tools = tools_from_json(ojson::parse(R"([
      {"type":"function","function":{"name":"get","description":"Weather","parameters":{"type":"object"},"strict":true}},
      {"name":"now"}])"),
                               "tools");
  ASSERT_TRUE(tools.ok()) << tools.status().to_string();
  ASSERT_EQ(tools->size(), 2u);
  EXPECT_EQ((*tools)[0].name, "get");
  EXPECT_EQ((*tools)[0].description, "Weather");
  EXPECT_EQ((*tools)[0].parameters, ojson::parse(R"({"type":"object"})"));
  EXPECT_FALSE((*tools)[0].strict);  // the encoder's input says nothing the server enforces
  EXPECT_EQ((*tools)[1].name, "now");
  EXPECT_FALSE((*tools)[1].description.has_value());
  EXPECT_TRUE((*tools)[1].parameters.is_null());
  EXPECT_EQ(find_tool(*tools, "now"), &(*tools)[1]);
  EXPECT_EQ(find_tool(*tools, "later"), nullptr);
  EXPECT_TRUE(tools_from_json(nullptr, "tools")->empty());
  for (const auto& [bad, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"name":"f"})", "tools must be an array"},
           {R"([{"type":"function","function":{"description":"d"}}])", "tools[0]: a tool must be"},
           {R"(["f"])", "tools[0]: a tool must be"},
           {R"([{"name":"f","description":5}])", "tools[0]: \"description\" must be a string"}}) {
    auto r = tools_from_json(ojson::parse(bad), "tools");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }
}

// The line is the function object in the official encoder's order (name, description,
// parameters) whatever order the client wrote it in; the schema keeps the client's key order.
TEST(ToolDefinition, SchemaLineIsTheFunctionObjectAsPythonDumpsIt) {
  auto tools = tools_from_json(ojson::parse(R"([{"type":"function","function":{"parameters":{"type":"object",
      "properties":{"z":{"type":"string"},"a":{"type":"integer"}}},"description":"Zürich","name":"get"}}])"),
                               "tools");
  ASSERT_TRUE(tools.ok());
  EXPECT_EQ(tool_schema_line((*tools)[0]),
            R"({"name": "get", "description": "Zürich", "parameters": {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "integer"}}}})");
  ToolDefinition bare;
  bare.name = "now";
  EXPECT_EQ(tool_schema_line(bare), R"({"name": "now"})");
}

}  // namespace
}  // namespace dsv4::text

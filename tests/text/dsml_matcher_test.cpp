// The DSML answer automaton (strict tools): which answers it takes, in the V4 and V4.1 dialects,
// and that what it takes parses into tool calls whose arguments follow the schemas.
#include <gtest/gtest.h>

#include <string>

#include "text/chat_encoding.h"
#include "text/completion_parser.h"
#include "text/dsml_matcher.h"

namespace dsv4::text {
namespace {

using json = nlohmann::json;

const json kWeather = json::parse(R"({"type":"object","properties":{
    "city":{"type":"string"},"units":{"enum":["c","f"]},"days":{"type":"integer"},
    "when":{"type":["string","null"]},"tags":{"type":"array","items":{"type":"string"},"maxItems":2}},
    "required":["city","days"],"additionalProperties":false})");

std::shared_ptr<const DsmlGrammar> grammar(EncoderRevision revision) {
  auto weather = compile_json_schema(kWeather, "parameters");
  EXPECT_TRUE(weather.ok());
  EXPECT_TRUE(check_strict_arguments(**weather, "parameters").ok());
  return dsml_grammar({{"get_weather", *weather}, {"search", nullptr}}, revision);
}

// Whether the matcher takes the whole text, and may end there.
struct Verdict {
  bool taken = false, complete = false;
};
Verdict run(std::string_view text, EncoderRevision revision = EncoderRevision::v4) {
  DsmlMatcher m(grammar(revision));
  Verdict v;
  v.taken = m.feed(text);
  v.complete = v.taken && m.accepting();
  return v;
}

// An answer with one call in `tags`: `params` are whole parameter elements, "K|true|VALUE".
std::string call(const chat::DsmlTags& tags, const std::string& name, const std::vector<std::string>& params) {
  std::string s = "Let me check.\n\n" + std::string(tags.calls_open) + "\n" + std::string(tags.invoke_open_prefix) + name + "\">\n";
  for (const std::string& p : params) {
    const size_t a = p.find('|'), b = p.find('|', a + 1);
    s += std::string(tags.param_open_prefix) + p.substr(0, a) + "\" string=\"" + p.substr(a + 1, b - a - 1) + "\">" +
         p.substr(b + 1) + std::string(tags.param_close) + "\n";
  }
  return s + std::string(tags.invoke_close) + "\n" + std::string(tags.calls_close);
}

TEST(DsmlMatcher, FreeTextAndValidCallsInBothDialects) {
  EXPECT_TRUE(run("Just text, even a <b> tag and \"quotes\".").complete);
  for (EncoderRevision rev : {EncoderRevision::v4, EncoderRevision::v41}) {
    SCOPED_TRACE(std::string(encoder_revision_name(rev)));
    const chat::DsmlTags& tags = dsml_tags(rev);
    const std::string ok = call(tags, "get_weather",
                                {"city|true|Paris <b>\"x\"</b>\n\\ \u00e9", "days|false|3", "tags|false|[\"a\", \"b\"]",
                                 "when|false|null", "units|true|f"});
    const Verdict v = run(ok, rev);
    EXPECT_TRUE(v.complete) << ok;
    const ParsedCompletion p = CompletionParser::parse(ok + std::string(chat::kEos), ThinkingMode::chat, rev);
    ASSERT_FALSE(p.malformed) << p.error;
    ASSERT_EQ(p.tool_calls.size(), 1u);
    const json args = json::parse(p.tool_calls[0].arguments);
    EXPECT_EQ(args["city"], "Paris <b>\"x\"</b>\n\\ \u00e9");
    EXPECT_EQ(args["days"], 3);
    EXPECT_EQ(args["units"], "f");
    // A free tool takes anything; two invokes in one block.
    std::string two = call(tags, "search", {"q|true|anything", "n|false|not json", "q|true|again"});
    two.insert(two.rfind(tags.calls_close), std::string(tags.invoke_open_prefix) + "get_weather\">\n" +
                                                 std::string(tags.param_open_prefix) + "days\" string=\"false\">7" +
                                                 std::string(tags.param_close) + std::string(tags.param_open_prefix) +
                                                 "city\" string=\"true\">Oslo" + std::string(tags.param_close) +
                                                 std::string(tags.invoke_close) + "\n");
    EXPECT_TRUE(run(two, rev).complete) << two;
    // What the chat encoder writes for a call is taken.
    const std::string rendered =
        "\n\n" + render_tool_calls({{"", "get_weather", R"({"city":"Rome","days":2,"tags":["x"]})"}}, rev);
    EXPECT_TRUE(run(rendered, rev).complete) << rendered;
    // Whitespace then EOS after the block; nothing else.
    EXPECT_TRUE(run(ok + "\n", rev).complete);
    EXPECT_FALSE(run(ok + "x", rev).taken);
  }
  // V4.1 reads V4's tags too (as its parser does); V4 does not know V4.1's.
  const std::string v4 = call(chat::kDsmlV4, "get_weather", {"city|true|Paris", "days|false|1"});
  EXPECT_TRUE(run(v4, EncoderRevision::v41).complete);
  const std::string v41 = call(chat::kDsmlV41, "get_weather", {"city|true|Paris", "days|false|1"});
  EXPECT_FALSE(run(v41, EncoderRevision::v4).taken);
}

TEST(DsmlMatcher, RefusesWhatBreaksTheSchemaOrTheFormat) {
  const chat::DsmlTags& t = chat::kDsmlV4;
  const std::pair<std::string, std::string> bad[] = {
      {"unknown tool", call(t, "get_wether", {"city|true|Paris", "days|false|1"})},
      {"unknown parameter", call(t, "get_weather", {"town|true|Paris", "days|false|1"})},
      {"missing required", call(t, "get_weather", {"city|true|Paris"})},
      {"wrong type", call(t, "get_weather", {"city|true|Paris", "days|false|\"1\""})},
      {"integer as raw string", call(t, "get_weather", {"city|true|Paris", "days|true|1"})},
      {"fraction for integer", call(t, "get_weather", {"city|true|Paris", "days|false|1.5"})},
      {"enum", call(t, "get_weather", {"city|true|Paris", "days|false|1", "units|true|k"})},
      {"duplicate", call(t, "get_weather", {"city|true|Paris", "city|true|Rome", "days|false|1"})},
      {"array too long", call(t, "get_weather", {"city|true|P", "days|false|1", "tags|false|[\"a\",\"b\",\"c\"]"})},
      {"bad flag", call(t, "get_weather", {"city|yes|Paris", "days|false|1"})},
      {"marker in text", "I will use <\uFF5CDSML\uFF5Cinvoke"},
      {"think tag in text", "done</think>"},
      {"EOS spelled out", "done<\uFF5Cend\u2581of\u2581sentence\uFF5C>"},
  };
  for (const auto& [why, text] : bad) EXPECT_FALSE(run(text).taken) << why << ": " << text;
  // An unfinished value is no place to end, nor a value's closing tag before the value is whole.
  EXPECT_FALSE(run(call(t, "get_weather", {"city|true|Paris", "days|false|-"})).taken);
  const Verdict open = run("x\n\n<\uFF5CDSML\uFF5Ctool_calls>\n<\uFF5CDSML\uFF5Cinvoke name=\"get_weather\">\n");
  EXPECT_TRUE(open.taken);
  EXPECT_FALSE(open.complete);
  // A closing tag inside a JSON string ends the value there (as the parser reads it): refused.
  EXPECT_FALSE(run(call(t, "get_weather",
                        {"city|true|P", "days|false|1", "tags|false|[\"</\uFF5CDSML\uFF5Cparameter>\"]"}))
                   .taken);
}

TEST(DsmlMatcher, StrictSchemasThatCannotBeEnforcedAreRefused) {
  for (const char* schema : {R"({"type":"object"})", R"({"type":"string"})",
                             R"({"type":"object","properties":{"a\"b":{"type":"string"}},"required":["a\"b"]})"}) {
    auto g = compile_json_schema(json::parse(schema), "parameters");
    ASSERT_TRUE(g.ok());
    EXPECT_FALSE(check_strict_arguments(**g, "parameters").ok()) << schema;
  }
  // An optional property with such a name is left out; a tool without parameters takes none.
  auto g = compile_json_schema(json::parse(R"({"type":"object","properties":{"a<b":{"type":"string"}}})"), "p");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(check_strict_arguments(**g, "p").ok());
  DsmlMatcher m(dsml_grammar({{"f", *g}}, EncoderRevision::v4));
  EXPECT_TRUE(m.feed("\n\n<\uFF5CDSML\uFF5Ctool_calls>\n<\uFF5CDSML\uFF5Cinvoke name=\"f\">\n</\uFF5CDSML\uFF5Cinvoke>"));
  DsmlMatcher n(dsml_grammar({{"f", *g}}, EncoderRevision::v4));
  EXPECT_FALSE(n.feed("\n\n<\uFF5CDSML\uFF5Ctool_calls>\n<\uFF5CDSML\uFF5Cinvoke name=\"f\">\n<\uFF5CDSML\uFF5Cparameter"));
}

}  // namespace
}  // namespace dsv4::text

// The JSON-schema compiler and the byte automaton: which texts a grammar takes whole, which it
// takes as a prefix, which it refuses, and which schemas are refused with the keyword named.
#include <gtest/gtest.h>

#include <string>

#include "text/json_matcher.h"
#include "text/json_schema.h"

namespace dsv4::text {
namespace {

using json = nlohmann::json;

std::shared_ptr<const JsonGrammar> grammar(const std::string& schema) {
  auto g = compile_json_schema(json::parse(schema), "schema");
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? *g : json_object_grammar();
}

// The whole text is a valid document.
bool takes(const std::shared_ptr<const JsonGrammar>& g, const std::string& text) {
  JsonMatcher m(g);
  return m.feed(text) && m.accepting();
}
// The text can still be completed.
bool prefix(const std::shared_ptr<const JsonGrammar>& g, const std::string& text) {
  JsonMatcher m(g);
  return m.feed(text);
}

std::string refusal(const std::string& schema) {
  auto g = compile_json_schema(json::parse(schema), "response_format.json_schema.schema");
  return g.ok() ? "" : g.status().message();
}

TEST(JsonMatcher, AnyObject) {
  const auto g = json_object_grammar();
  for (const char* ok : {"{}", R"({"a":1})", R"( {"a": [1, "x", null, true, {"b": {}}], "a": -0.5e+3})",
                         R"({"":""})", "{\n  \"k\": false\n}"})
    EXPECT_TRUE(takes(g, ok)) << ok;
  for (const char* no : {"[]", "1", "\"x\"", "null", R"({"a":})", R"({"a":1,})", R"({a:1})", R"({"a":1}})",
                         R"({"a":1} )", R"({"a":01})", R"({"a":tru})", R"({,})"})
    EXPECT_FALSE(takes(g, no)) << no;
  EXPECT_TRUE(prefix(g, R"({"a":[1,{"b":"c)"));
  EXPECT_FALSE(prefix(g, "{]"));
}

TEST(JsonMatcher, PropertiesRequiredAnyOrderOnce) {
  const auto g = grammar(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
                               "tags":{"type":"array","items":{"type":"string"}}},
                             "required":["name","age"],"additionalProperties":false})");
  EXPECT_TRUE(takes(g, R"({"name":"x","age":3})"));
  EXPECT_TRUE(takes(g, R"({"age":3,"tags":["a"],"name":"x"})"));
  EXPECT_FALSE(takes(g, R"({"name":"x"})"));                 // age missing
  EXPECT_FALSE(prefix(g, R"({"name":"x"})"));                // `}` refused at once
  EXPECT_FALSE(prefix(g, R"({"name":"x","name")"));          // twice
  EXPECT_FALSE(prefix(g, R"({"nam":)"));                     // undeclared
  EXPECT_FALSE(prefix(g, R"({"other)"));
  EXPECT_FALSE(takes(g, R"({"name":"x","age":3.5})"));       // integer
  EXPECT_FALSE(prefix(g, R"({"name":"x","age":3,"tags":["a"],)"));  // nothing left to write
  EXPECT_FALSE(prefix(g, R"({"name":1)"));
  // A key whose bytes are a prefix of a written key's: only the unwritten one may continue.
  const auto p = grammar(R"({"properties":{"a":{"type":"null"},"ab":{"type":"null"}}})");
  EXPECT_TRUE(takes(p, R"({"ab":null,"a":null})"));
  EXPECT_FALSE(prefix(p, R"({"a":null,"a")"));
  EXPECT_TRUE(prefix(p, R"({"a":null,"ab)"));
  EXPECT_TRUE(takes(p, "{}"));
}

TEST(JsonMatcher, StringsTakeUtf8AndEscapesOnly) {
  const auto g = grammar(R"({"type":"string"})");
  for (const char* ok : {R"("")", R"("a b")", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"",
                         R"("\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00")"})
    EXPECT_TRUE(takes(g, ok)) << ok;
  for (const char* no : {"\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"",
                         R"("\x")", R"("\u12G4")", R"("\uD83D")", R"("\uD83Dx")", R"("\uD83D\u0041")"})
    EXPECT_FALSE(takes(g, no)) << no;
  // A lone low surrogate is refused at its second digit, which leaves no dead position.
  EXPECT_TRUE(prefix(g, R"("\uD)"));
  EXPECT_FALSE(prefix(g, R"("\uDC)"));
  EXPECT_FALSE(prefix(g, R"("\uD83D\uD8)"));
  EXPECT_TRUE(prefix(g, "\"\xe4\xb8"));  // half a character: more to come
}

TEST(JsonMatcher, NumbersFollowTheJsonGrammar) {
  const auto num = grammar(R"({"type":"number"})");
  for (const char* ok : {"0", "-0", "12", "-3.25", "1e5", "1E+5", "2.5e-3", "0.0"})
    EXPECT_TRUE(takes(num, ok)) << ok;
  for (const char* no : {"01", "-", "1.", ".5", "1e", "+1", "1.e3", "--1", "0x1"})
    EXPECT_FALSE(takes(num, no)) << no;
  const auto integer = grammar(R"({"type":"integer"})");
  EXPECT_TRUE(takes(integer, "-42"));
  EXPECT_FALSE(prefix(integer, "1."));
  EXPECT_FALSE(prefix(integer, "1e"));
  // Digits are bounded so that every number fits a double (and an integer int64).
  EXPECT_TRUE(takes(num, "-" + std::string(kMaxIntegerDigits, '9') + "." + std::string(kMaxFractionDigits, '9') + "e-99"));
  EXPECT_FALSE(prefix(num, std::string(kMaxIntegerDigits + 1, '9')));
  EXPECT_FALSE(prefix(num, "0." + std::string(kMaxFractionDigits + 1, '1')));
  EXPECT_FALSE(prefix(num, "1e100"));
  // Inside a structure the number ends where the next byte cannot continue it.
  const auto arr = grammar(R"({"type":"array","items":{"type":"integer"}})");
  EXPECT_TRUE(takes(arr, "[1,23 , -4]"));
  EXPECT_FALSE(takes(arr, "[1.5]"));
}

TEST(JsonMatcher, EnumsConstAndTypeArrays) {
  const auto e = grammar(R"({"enum":["red","green",1,12,null,{"a":[1]}]})");
  for (const char* ok : {R"("red")", R"("green")", "1", "12", "null", R"({"a":[1]})"}) EXPECT_TRUE(takes(e, ok)) << ok;
  for (const char* no : {R"("re")", R"("blue")", "2", "123", R"({"a": [1]})", R"("gre"en")"})
    EXPECT_FALSE(takes(e, no)) << no;
  // 1 ends where an enclosing value goes on.
  const auto inner = grammar(R"({"type":"array","items":{"enum":[1,12]}})");
  EXPECT_TRUE(takes(inner, "[1,12,1]"));
  EXPECT_FALSE(takes(inner, "[13]"));
  const auto c = grammar(R"({"const":"only"})");
  EXPECT_TRUE(takes(c, R"("only")"));
  EXPECT_FALSE(prefix(c, R"("on")"));
  const auto nullable = grammar(R"({"type":["string","null"]})");
  EXPECT_TRUE(takes(nullable, "null"));
  EXPECT_TRUE(takes(nullable, R"("x")"));
  EXPECT_FALSE(takes(nullable, "1"));
  const auto typed_enum = grammar(R"({"type":"string","enum":["a",1]})");
  EXPECT_TRUE(takes(typed_enum, R"("a")"));
  EXPECT_FALSE(takes(typed_enum, "1"));
  const auto b = grammar(R"({"type":"boolean"})");
  EXPECT_TRUE(takes(b, "true") && takes(b, "false"));
  EXPECT_FALSE(takes(b, "null"));
}

TEST(JsonMatcher, AnyOfRunsEveryAlternative) {
  const auto g = grammar(R"({"anyOf":[
      {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
      {"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"number"}},"required":["kind","side"]},
      {"type":"null"}]})");
  EXPECT_TRUE(takes(g, R"({"kind":"circle","r":1})"));
  EXPECT_TRUE(takes(g, R"({"side":2,"kind":"square"})"));
  EXPECT_TRUE(takes(g, "null"));
  EXPECT_FALSE(takes(g, R"({"kind":"circle","side":1})"));
  EXPECT_FALSE(takes(g, R"({"kind":"square"})"));
  JsonMatcher m(g);
  ASSERT_TRUE(m.feed("{"));
  EXPECT_EQ(m.thread_count(), 2u);
  ASSERT_TRUE(m.feed(R"("kind":"sq)"));
  EXPECT_EQ(m.thread_count(), 1u);
}

TEST(JsonMatcher, ArraysCountItems) {
  const auto g = grammar(R"({"type":"array","items":{"type":"boolean"},"minItems":2,"maxItems":3})");
  EXPECT_FALSE(takes(g, "[]"));
  EXPECT_FALSE(prefix(g, "[true]"));
  EXPECT_TRUE(takes(g, "[true,false]"));
  EXPECT_TRUE(takes(g, "[ true , false , true ]"));
  EXPECT_FALSE(prefix(g, "[true,false,true,"));
  EXPECT_FALSE(prefix(g, "[true,]"));
  const auto empty = grammar(R"({"type":"array","maxItems":0})");
  EXPECT_TRUE(takes(empty, "[]"));
  EXPECT_FALSE(prefix(empty, "[1"));
}

TEST(JsonMatcher, RecursiveReferences) {
  const auto g = grammar(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object",
      "properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
      "required":["value"],"additionalProperties":false}}})");
  EXPECT_TRUE(takes(g, R"({"value":1,"children":[{"value":2},{"value":3,"children":[{"value":4}]}]})"));
  EXPECT_FALSE(takes(g, R"({"value":1,"children":[{"children":[]}]})"));
  const auto root = grammar(R"({"type":"object","properties":{"next":{"$ref":"#"}}})");
  EXPECT_TRUE(takes(root, R"({"next":{"next":{}}})"));
  // Nesting stops at kMaxNesting.
  const auto any = json_object_grammar();
  std::string deep;
  for (int i = 0; i < kMaxNesting; ++i) deep += R"({"a":)";
  EXPECT_TRUE(prefix(any, deep));
  EXPECT_FALSE(prefix(any, deep + "{"));
  EXPECT_TRUE(prefix(any, deep + "1"));
}

TEST(JsonMatcher, WhitespaceIsBounded) {
  const auto g = json_object_grammar();
  EXPECT_TRUE(takes(g, std::string(kMaxWhitespace, ' ') + "{}"));
  EXPECT_FALSE(prefix(g, std::string(kMaxWhitespace + 1, ' ')));
  EXPECT_TRUE(takes(g, "{\"a\"" + std::string(kMaxWhitespace, '\n') + ":1}"));
  EXPECT_FALSE(prefix(g, "{\"a\":1" + std::string(kMaxWhitespace + 1, '\t')));
  EXPECT_FALSE(prefix(g, "{} "));  // nothing after the value
}

TEST(JsonSchema, RefusesWhatItCannotEnforce) {
  EXPECT_EQ(refusal(R"({"type":"string","pattern":"^a"})"),
            "'response_format.json_schema.schema': unsupported keyword 'pattern'");
  EXPECT_EQ(refusal(R"({"type":"object","properties":{"age":{"type":"integer","minimum":0}}})"),
            "'response_format.json_schema.schema.properties.age': unsupported keyword 'minimum'");
  EXPECT_NE(refusal(R"({"oneOf":[{"type":"string"}]})").find("'oneOf'"), std::string::npos);
  EXPECT_NE(refusal(R"({"type":"string","format":"date"})").find("'format'"), std::string::npos);
  EXPECT_NE(refusal(R"({"type":"object","properties":{},"required":["x"]})").find("'x'"), std::string::npos);
  EXPECT_NE(refusal(R"({"$ref":"#/$defs/missing"})").find("does not name"), std::string::npos);
  EXPECT_NE(refusal(R"({"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}})").find("cycle"), std::string::npos);
  EXPECT_NE(refusal(R"({"type":"object","properties":{"me":{"$ref":"#"}},"required":["me"]})").find("finite"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"type":"strin"})").find("unknown type"), std::string::npos);
  EXPECT_NE(refusal(R"({"type":"array","maxItems":100000})").find("maxItems"), std::string::npos);
  EXPECT_NE(refusal(R"({"enum":[]})").find("enum"), std::string::npos);
  EXPECT_NE(refusal("false").find("no value"), std::string::npos);
  // A chain of $refs is bounded like nesting.
  json defs = json::object();
  for (int i = 0; i < kMaxSchemaDepth + 5; ++i) defs["d" + std::to_string(i)] = {{"$ref", "#/$defs/d" + std::to_string(i + 1)}};
  defs["d" + std::to_string(kMaxSchemaDepth + 5)] = {{"type", "null"}};
  EXPECT_NE(refusal(json{{"$ref", "#/$defs/d0"}, {"$defs", defs}}.dump()).find("nests deeper"), std::string::npos);
  // Annotations are fine.
  EXPECT_EQ(refusal(R"({"title":"T","description":"d","type":"object","properties":{"a":{"type":"string",
                       "description":"x","default":"y"}},"$schema":"http://json-schema.org/draft-07/schema#"})"),
            "");
}

TEST(JsonSchema, PrunesValuesThatCannotEnd) {
  // An optional property of the object's own type that requires itself can never be written.
  const auto g = grammar(R"({"type":"object","properties":{"a":{"type":"integer"},
      "loop":{"$ref":"#/$defs/l"}},"$defs":{"l":{"type":"object","properties":{"x":{"$ref":"#/$defs/l"}},
      "required":["x"]}}})");
  EXPECT_TRUE(takes(g, R"({"a":1})"));
  EXPECT_FALSE(prefix(g, R"({"l)"));
}

}  // namespace
}  // namespace dsv4::text

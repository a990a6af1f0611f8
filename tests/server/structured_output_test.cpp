// Structured outputs through the whole HTTP stack (fake engine, byte codec, the production
// JsonConstraint): Chat Completions response_format, Responses text.format and Anthropic
// output_config.format answer with JSON that parses and follows the schema, streamed or not,
// in thinking mode (after the reasoning) and with speculative decoding (same greedy answer).
#include <gtest/gtest.h>

#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

using namespace test_server;

const json kSchema = json::parse(R"({"type":"object","properties":{
    "name":{"type":"string"},"n":{"type":"integer"},"ok":{"type":"boolean"},
    "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},
    "required":["name","n","ok","tags"],"additionalProperties":false})");

// The answer follows kSchema.
void expect_schema_answer(const std::string& content) {
  const json v = json::parse(content, nullptr, false);
  ASSERT_FALSE(v.is_discarded()) << "[" << content << "]";
  ASSERT_TRUE(v.is_object()) << content;
  EXPECT_EQ(v.size(), 4u) << content;
  EXPECT_TRUE(v["name"].is_string() && v["n"].is_number_integer() && v["ok"].is_boolean() && v["tags"].is_array())
      << content;
  for (const auto& t : v["tags"]) EXPECT_TRUE(t == "a" || t == "b" || t == "c") << content;
}

json schema_chat(bool stream) {
  json b = chat_body("give me JSON", 2000, stream);
  b["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "thing"}, {"schema", kSchema}, {"strict", true}}}};
  return b;
}

// The content of a streamed chat completion.
std::string streamed_content(const std::string& sse) {
  std::string content;
  for (size_t at = sse.find("data: "); at != std::string::npos; at = sse.find("data: ", at + 1)) {
    const size_t end = sse.find("\n\n", at);
    const json e = json::parse(sse.substr(at + 6, end - at - 6), nullptr, false);
    if (e.is_discarded() || !e.contains("choices") || e["choices"].empty()) continue;
    const json& d = e["choices"][0]["delta"];
    if (d.contains("content") && d["content"].is_string()) content += d["content"].get<std::string>();
  }
  return content;
}

TEST(StructuredOutput, ChatCompletionsJsonSchema) {
  ServerFixture f({}, {}, /*context=*/8192);
  for (bool thinking : {false, true}) {
    SCOPED_TRACE(thinking);
    json b = schema_chat(false);
    b["thinking"] = {{"type", thinking ? "enabled" : "disabled"}};
    b["max_tokens"] = 4000;
    auto r = f.post("/v1/chat/completions", b);
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    const json body = json::parse(r->body);
    EXPECT_EQ(body["choices"][0]["finish_reason"], "stop") << r->body;
    expect_schema_answer(body["choices"][0]["message"]["content"].get<std::string>());
  }
  auto s = f.post("/v1/chat/completions", schema_chat(true));
  ASSERT_TRUE(s && s->status == 200);
  expect_schema_answer(streamed_content(s->body));
}

TEST(StructuredOutput, JsonObjectAndOtherApis) {
  ServerFixture f({}, {}, /*context=*/8192);
  json b = chat_body("JSON please", 3000);
  b["response_format"] = {{"type", "json_object"}};
  auto r = f.post("/v1/chat/completions", b);
  ASSERT_TRUE(r && r->status == 200);
  const json body = json::parse(r->body);
  const std::string content = body["choices"][0]["message"]["content"];
  if (body["choices"][0]["finish_reason"] == "stop") {
    EXPECT_TRUE(json::parse(content, nullptr, false).is_object()) << content;
  } else {  // cut at max_tokens: an object under way
    EXPECT_EQ(content.substr(0, 1), "{") << content;
  }

  json resp = responses_body("JSON please", 2000);
  resp["text"] = {{"format", {{"type", "json_schema"}, {"name", "thing"}, {"schema", kSchema}}}};
  auto rr = f.post("/v1/responses", resp);
  ASSERT_TRUE(rr && rr->status == 200) << (rr ? rr->body : "");
  const json out = json::parse(rr->body);
  EXPECT_EQ(out["text"]["format"]["type"], "json_schema");
  std::string text;
  for (const auto& item : out["output"])
    if (item["type"] == "message") text = item["content"][0]["text"];
  expect_schema_answer(text);

  json m = messages_body("JSON please", 2000);
  m["output_config"] = {{"format", {{"type", "json_schema"}, {"schema", kSchema}}}};
  auto mr = f.post("/v1/messages", m);
  ASSERT_TRUE(mr && mr->status == 200) << (mr ? mr->body : "");
  const json msg = json::parse(mr->body);
  EXPECT_EQ(msg["stop_reason"], "end_turn");
  expect_schema_answer(msg["content"][0]["text"].get<std::string>());
  m["output_config"]["format"]["schema"]["properties"]["n"]["multipleOf"] = 2;
  expect_anthropic_error(f.post("/v1/messages", m), 400, "invalid_request_error",
                         "'output_config.format.schema.properties.n': unsupported keyword 'multipleOf'");
}

TEST(StructuredOutput, SpeculationGivesTheSameGreedyAnswer) {
  ServerFixture plain;
  ServerFixture spec({}, {}, 512, std::chrono::milliseconds(0), /*max_drafts=*/4);
  const json b = schema_chat(false);
  auto a = plain.post("/v1/chat/completions", b), c = spec.post("/v1/chat/completions", b);
  ASSERT_TRUE(a && c && a->status == 200 && c->status == 200);
  const json ja = json::parse(a->body), jc = json::parse(c->body);
  EXPECT_EQ(ja["choices"][0]["message"]["content"], jc["choices"][0]["message"]["content"]);
  expect_schema_answer(jc["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_GT(jc["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 0);
}

}  // namespace
}  // namespace dsv4::server

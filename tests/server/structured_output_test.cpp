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

// Tools with strict: true: the call's arguments follow the tool's schema (the production DSML
// constraint and completion parser over the byte vocabulary: byte_codec.h).
const json kAlarm = json::parse(R"({"type":"object","properties":{
    "h":{"type":"integer"},"m":{"type":"integer"},"am":{"type":"boolean"},"tone":{"enum":["beep","chime"]}},
    "required":["h","m","tone"],"additionalProperties":false})");

void expect_alarm_arguments(const json& args) {
  ASSERT_TRUE(args.is_object()) << args.dump();
  EXPECT_TRUE(args["h"].is_number_integer() && args["m"].is_number_integer()) << args.dump();
  EXPECT_TRUE(args["tone"] == "beep" || args["tone"] == "chime") << args.dump();
  if (args.contains("am")) {
    EXPECT_TRUE(args["am"].is_boolean()) << args.dump();
  }
  for (const auto& [k, v] : args.items()) {
    EXPECT_TRUE(kAlarm["properties"].contains(k)) << k;
  }
}

json strict_chat() {
  json b = chat_body("wake me", 600);
  b["thinking"] = {{"type", "disabled"}};
  b["tools"] = {{{"type", "function"},
                 {"function", {{"name", "set_alarm"}, {"parameters", kAlarm}, {"strict", true}}}},
                {{"type", "function"}, {"function", {{"name", "other"}}}}};
  b["tool_choice"] = "required";
  return b;
}

TEST(StrictTools, ArgumentsFollowTheSchemaOnEveryApi) {
  ServerFixture f({}, {}, /*context=*/4096);
  auto r = f.post("/v1/chat/completions", strict_chat());
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  const json body = json::parse(r->body);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls") << r->body;
  const json& calls = body["choices"][0]["message"]["tool_calls"];
  ASSERT_FALSE(calls.empty()) << r->body;
  for (const json& c : calls)
    if (c["function"]["name"] == "set_alarm") expect_alarm_arguments(json::parse(c["function"]["arguments"].get<std::string>()));

  json m = messages_body("wake me", 600);
  m["tools"] = {{{"name", "set_alarm"}, {"input_schema", kAlarm}, {"strict", true}}};
  m["tool_choice"] = {{"type", "any"}};
  auto mr = f.post("/v1/messages", m);
  ASSERT_TRUE(mr && mr->status == 200) << (mr ? mr->body : "");
  const json msg = json::parse(mr->body);
  EXPECT_EQ(msg["stop_reason"], "tool_use") << mr->body;
  bool used = false;
  for (const json& c : msg["content"])
    if (c["type"] == "tool_use") used = true, expect_alarm_arguments(c["input"]);
  EXPECT_TRUE(used) << mr->body;

  json resp = responses_body("wake me", 600);
  resp["reasoning"] = {{"effort", "none"}};
  resp["tools"] = {{{"type", "function"}, {"name", "set_alarm"}, {"parameters", kAlarm}, {"strict", true}}};
  resp["tool_choice"] = "required";
  auto rr = f.post("/v1/responses", resp);
  ASSERT_TRUE(rr && rr->status == 200) << (rr ? rr->body : "");
  used = false;
  const json out = json::parse(rr->body);
  for (const json& item : out["output"])
    if (item["type"] == "function_call") used = true, expect_alarm_arguments(json::parse(item["arguments"].get<std::string>()));
  EXPECT_TRUE(used) << rr->body;

  // What cannot be enforced is refused, naming it.
  json loose = strict_chat();
  loose["tools"][0]["function"]["parameters"] = {{"type", "object"}};
  expect_openai_error(f.post("/v1/chat/completions", loose), 400, "must list its parameters in 'properties'");
}

TEST(StrictTools, SpeculationGivesTheSameGreedyCall) {
  ServerFixture plain({}, {}, 4096);
  ServerFixture spec({}, {}, 4096, std::chrono::milliseconds(0), /*max_drafts=*/4);
  const json b = strict_chat();
  auto a = plain.post("/v1/chat/completions", b), c = spec.post("/v1/chat/completions", b);
  ASSERT_TRUE(a && c && a->status == 200 && c->status == 200);
  const json ja = json::parse(a->body), jc = json::parse(c->body);
  const json& calls_a = ja["choices"][0]["message"]["tool_calls"];
  const json& calls_c = jc["choices"][0]["message"]["tool_calls"];
  ASSERT_EQ(calls_a.size(), calls_c.size()) << a->body << c->body;
  ASSERT_FALSE(calls_a.empty());
  for (size_t i = 0; i < calls_a.size(); ++i) EXPECT_EQ(calls_a[i]["function"], calls_c[i]["function"]);  // ids are random
  EXPECT_GT(jc["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 0);
}

}  // namespace
}  // namespace dsv4::server

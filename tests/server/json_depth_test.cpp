// Request JSON nested past kMaxJsonDepth is refused before anything recurses over it (issue #15:
// 50,000 levels inside a tool schema overflowed the stack of the recursive json copy).
#include <gtest/gtest.h>

#include <string>

#include "server/anthropic.h"
#include "server/json_fields.h"
#include "server/openai.h"
#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

constexpr text::EncoderRevision kPreview = text::EncoderRevision::v4;

std::string nested(int depth) { return std::string(size_t(depth), '[') + std::string(size_t(depth), ']'); }

// The places issue #15 found, in an OpenAI and an Anthropic body, with `deep` spliced in.
std::vector<std::string> openai_bodies(const std::string& deep) {
  const std::string user = R"({"role":"user","content":"hi"})";
  return {
      R"({"model":"m","messages":[)" + user + R"(],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","x":)" + deep + "}}}]}",
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","extra":)" + deep + "}]}]}",
      R"({"model":"m","messages":[)" + user + R"(,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":)" + deep + "}}}]}]}",
  };
}
std::vector<std::string> anthropic_bodies(const std::string& deep) {
  const std::string user = R"({"role":"user","content":"hi"})";
  return {
      R"({"model":"m","max_tokens":5,"messages":[)" + user + R"(],"tools":[{"name":"f","input_schema":{"type":"object","x":)" + deep + "}}]}",
      R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a","extra":)" + deep + "}]}]}",
      R"({"model":"m","max_tokens":5,"messages":[)" + user + R"(,{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":)" + deep + "}}]}," + user + "]}",
  };
}

TEST(JsonDepth, ProbeCountsArraysAndObjects) {
  EXPECT_FALSE(json_nests_deeper_than("{}", 1));
  EXPECT_TRUE(json_nests_deeper_than("{\"a\":[]}", 1));
  EXPECT_FALSE(json_nests_deeper_than("{\"a\":\"[[[[[[\"}", 1));   // brackets inside strings do not count
  EXPECT_FALSE(json_nests_deeper_than(nested(128), 128));
  EXPECT_TRUE(json_nests_deeper_than(nested(129), 128));
  EXPECT_TRUE(json_nests_deeper_than(nested(100000), 128));
  EXPECT_TRUE(json_nests_deeper_than(std::string(100000, '['), 128));   // unterminated, still too deep
  EXPECT_FALSE(json_nests_deeper_than("{oops", 128));
}

TEST(JsonDepth, DeepRequestsAreRefusedInBothApis) {
  const std::string deep = nested(100000);
  for (const std::string& body : openai_bodies(deep)) {
    auto r = parse_chat_request(body, kPreview);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(r.status().message().find("deeper than 128 levels"), std::string::npos) << r.status().message();
  }
  for (const std::string& body : anthropic_bodies(deep)) {
    auto r = parse_messages_request(body, kPreview);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("deeper than 128 levels"), std::string::npos) << r.status().message();
  }
  // OpenAI tool-call arguments are JSON text inside a string: checked on their own.
  auto args = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":")" +
      deep + R"("}}]}]})", kPreview);
  ASSERT_FALSE(args.ok());
  EXPECT_NE(args.status().message().find("'messages[1].tool_calls[0].function.arguments' nests"), std::string::npos)
      << args.status().message();
  auto completion = parse_completion_request(R"({"model":"m","prompt":"x","extra":)" + deep + "}");
  EXPECT_FALSE(completion.ok());
}

TEST(JsonDepth, ModerateNestingIsAccepted) {
  const std::string ok = nested(100);
  // Bodies that are valid apart from the depth (the OpenAI tool call's arguments must be a string).
  EXPECT_TRUE(parse_chat_request(openai_bodies(ok)[0], kPreview).ok());
  EXPECT_TRUE(parse_chat_request(openai_bodies(ok)[1], kPreview).ok());
  for (const std::string& body : anthropic_bodies(ok)) EXPECT_TRUE(parse_messages_request(body, kPreview).ok()) << body.substr(0, 80);
}

// Against a live server: every deep body gets 400 in its API's shape, and the server keeps
// answering (before the limit, these killed it with SIGSEGV).
TEST(JsonDepth, LiveServerRefusesDeepBodiesAndStaysUp) {
  test_server::ServerFixture f;
  const std::string deep = nested(100000);
  for (const std::string& body : openai_bodies(deep)) {
    test_server::expect_openai_error(f.client->Post("/v1/chat/completions", body, "application/json"), 400,
                                     "deeper than 128 levels");
    ASSERT_EQ(f.client->Get("/health")->status, 200);
  }
  for (const std::string& body : anthropic_bodies(deep)) {
    test_server::expect_anthropic_error(f.client->Post("/v1/messages", body, "application/json"), 400,
                                        "invalid_request_error", "deeper than 128 levels");
    test_server::expect_anthropic_error(f.client->Post("/v1/messages/count_tokens", body, "application/json"), 400,
                                        "invalid_request_error", "deeper than 128 levels");
    ASSERT_EQ(f.client->Get("/health")->status, 200);
  }
  test_server::expect_openai_error(
      f.client->Post("/v1/completions", R"({"model":"fake-model","prompt":"x","extra":)" + deep + "}",
                     "application/json"),
      400, "deeper than 128 levels");
  EXPECT_EQ(f.post("/v1/chat/completions", test_server::chat_body("x", 2))->status, 200);
}

}  // namespace
}  // namespace dsv4::server

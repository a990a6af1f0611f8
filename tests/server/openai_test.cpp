#include "server/openai.h"

#include <gtest/gtest.h>

namespace dsv4::server {
namespace {

using json = nlohmann::json;

json frame_json(const std::string& frame) {
  EXPECT_EQ(frame.rfind("data: ", 0), 0u) << frame;
  return json::parse(frame.substr(6));
}

TEST(OpenAi, ChatCompletionJoinsEachCallsDeltas) {
  ChatCompletion c("chatcmpl-1", 7, "m", /*reasoning=*/true, /*logprobs=*/false);
  ChatDelta a;
  a.reasoning = "think";
  a.tool_calls = {{0, "call_a", "f", "{\"x\":"}};
  ChatDelta b;
  b.tool_calls = {{0, "", "", "1}"}, {1, "call_b", "g", "{}"}};
  c.add(a);
  c.add(b);
  runtime::GenerationEvent f;
  f.prompt_tokens = 5;
  f.generated_tokens = 3;
  const json r = c.response("tool_calls", json::array(), openai_usage(f));
  EXPECT_EQ(r["object"], "chat.completion");
  const json& m = r["choices"][0]["message"];
  EXPECT_TRUE(m["content"].is_null());  // tool calls only
  EXPECT_EQ(m["reasoning_content"], "think");
  ASSERT_EQ(m["tool_calls"].size(), 2u);
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
  EXPECT_EQ(m["tool_calls"][1]["id"], "call_b");
  EXPECT_TRUE(r["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(r["usage"]["total_tokens"], 8);
}

TEST(OpenAi, ChatCompletionStreamFrames) {
  ChatCompletion c("chatcmpl-1", 7, "m", false, true);
  EXPECT_EQ(frame_json(c.stream_start())["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_EQ(c.stream_piece(ChatDelta{}, json::array()), "");  // nothing new: no frame
  ChatDelta d;
  d.content = "hi";
  const json piece = frame_json(c.stream_piece(d, json::array({{{"token", "hi"}}})));
  EXPECT_EQ(piece["object"], "chat.completion.chunk");
  EXPECT_EQ(piece["choices"][0]["delta"]["content"], "hi");
  EXPECT_EQ(piece["choices"][0]["logprobs"]["content"][0]["token"], "hi");
  // The finish frame, then the usage frame (no choices) when usage is asked for.
  const std::string end = c.stream_end("stop", json{{"total_tokens", 2}});
  const size_t split = end.find("\n\n") + 2;
  EXPECT_EQ(frame_json(end.substr(0, split))["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(frame_json(end.substr(split))["choices"], json::array());
  EXPECT_EQ(c.stream_end("stop", json()).find("usage"), std::string::npos);
}

TEST(OpenAi, TextCompletionLogprobsInTheCompletionsShape) {
  TextCompletion t("cmpl-1", 7, "m", /*logprobs=*/true);
  const json entries = json::array({{{"token", "a"}, {"logprob", -0.5}, {"top_logprobs", {{{"token", "b"}, {"logprob", -1.0}}}}}});
  const json r = t.response("xa", "length", entries, json::object());
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["text"], "xa");
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"], json::array({"a"}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["top_logprobs"][0]["b"], -1.0);
  // An echoed prompt has no log-probabilities.
  EXPECT_TRUE(frame_json(t.stream_piece("x", nullptr))["choices"][0]["logprobs"].is_null());
}

}  // namespace
}  // namespace dsv4::server

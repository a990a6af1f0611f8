#include "server/text_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "server/openai.h"
#include "server/response_run.h"
#include "test_paths.h"
#include "text/chat_tokens.h"

namespace dsv4::server {
namespace {

constexpr text::EncoderRevision kPreview = text::EncoderRevision::v4;

// A parser's events for one piece of output, as the server's deltas.
ChatDelta push(text::OutputParser& p, std::string_view piece) {
  std::vector<text::CompletionEvent> events;
  p.feed(piece, events);
  return chat_delta(events);
}
ChatDelta finish(text::OutputParser& p) {
  std::vector<text::CompletionEvent> events;
  p.finish(events);
  return chat_delta(events);
}

std::unique_ptr<TextCodec> demo_codec() {
  auto c = make_text_codec(test::demo_model_dir(), test::vendored_tokenizer_dir(), kPreview);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? std::move(c).value() : nullptr;
}

TEST(TextCodec, ChatPromptFollowsTheModeAndStartsWithBos) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  auto req = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})", kPreview);
  ASSERT_TRUE(req.ok());
  auto think = codec->encode_chat(*req);
  ASSERT_TRUE(think.ok()) << think.status().to_string();
  // Demo tokenizer: BOS 0, User 2, Assistant 3, <think> 4, </think> 5.
  EXPECT_EQ(think->front(), 0);
  EXPECT_EQ((*think)[1], 2);
  EXPECT_EQ(think->end()[-2], 3);
  EXPECT_EQ(think->back(), 4);
  req->thinking.mode = ThinkingMode::chat;
  auto chat = codec->encode_chat(*req);
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->back(), 5);
}

// keep_thinking (Anthropic's clear_thinking keep "all") renders the reasoning of earlier turns,
// which the encoder drops by default in thinking mode.
TEST(TextCodec, KeepThinkingRendersEarlierReasoning) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  auto req = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"Hi"},
      {"role":"assistant","content":"Hello","reasoning_content":"a greeting deserves one"},
      {"role":"user","content":"Bye"}]})",
                                kPreview);
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  auto dropped = codec->encode_chat(*req);
  req->keep_thinking = true;
  auto kept = codec->encode_chat(*req);
  ASSERT_TRUE(dropped.ok() && kept.ok());
  auto text_of = [&](const std::vector<int32_t>& ids) {
    std::string t;
    for (int32_t id : ids) t += codec->token_text(id);
    return t;
  };
  EXPECT_EQ(text_of(*dropped).find("a greeting deserves one"), std::string::npos);
  EXPECT_NE(text_of(*kept).find("a greeting deserves one"), std::string::npos);
}

TEST(TextCodec, RawTextGetsOneBos) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  auto ids = codec->encode_text("def f():");
  EXPECT_EQ(ids.front(), 0);
  EXPECT_GT(ids.size(), 2u);
  auto again = codec->encode_text("<｜begin▁of▁sentence｜>def f():");
  EXPECT_EQ(again, ids);
}

TEST(TextCodec, StreamingTextRoundTrips) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  const std::string text = "def héllo(x):\n    return x * 2  # ünïcode";
  auto ids = codec->encode_text(text);
  auto stream = codec->new_token_decoder();
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i) out += stream->push(ids[i]);
  out += stream->finish();
  EXPECT_EQ(out, text);
}

TEST(TextCodec, ParserSplitsReasoningContentAndToolCalls) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  auto req = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"w?"}]})", kPreview);
  ASSERT_TRUE(req.ok());
  auto p = codec->new_output_parser(*req);
  const std::string out =
      "let me see</think>Checking.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
      "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
      "</｜DSML｜tool_calls>";
  ChatDelta all;
  std::vector<ToolCallDelta> calls;
  for (size_t i = 0; i < out.size(); i += 7) {
    auto d = push(*p, std::string_view(out).substr(i, 7));
    all.reasoning += d.reasoning;
    all.content += d.content;
    calls.insert(calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  }
  auto d = finish(*p);
  all.content += d.content;
  calls.insert(calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  EXPECT_EQ(all.reasoning, "let me see");
  EXPECT_EQ(all.content, "Checking.");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(calls[1].index, 0);
  EXPECT_EQ(calls[1].arguments, R"({"city": "Paris"})");
}

TEST(TextCodec, ToolRoundTripRenders) {
  auto codec = demo_codec();
  ASSERT_TRUE(codec);
  auto req = parse_chat_request(R"({"model":"m","messages":[
    {"role":"user","content":"weather?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
      "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"sunny"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})",
                                kPreview);
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  auto ids = codec->encode_chat(*req);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  auto stream = codec->new_token_decoder();
  std::string text;
  for (int32_t id : *ids) text += stream->push(id);
  EXPECT_NE(text.find("<tool_result>sunny</tool_result>"), std::string::npos) << text;
  EXPECT_NE(text.find("get_weather"), std::string::npos);
}

// The codec renders in the revision it was made for: the request's reasoning effort becomes that
// encoder's prefix (addendum §A6.2; the texts are checked byte for byte in tests/text).
TEST(TextCodec, RendersTheReasoningEffortOfItsRevision) {
  struct Case { const char* effort; std::string_view prefix; };
  struct Revision { text::EncoderRevision revision; std::vector<Case> cases; };
  for (const Revision& r :
       {Revision{kPreview, {{"", ""}, {"high", ""}, {"max", text::chat::kEffortAbsoluteMax}}},
        Revision{text::EncoderRevision::v4_flash_0731,
                 {{"", ""}, {"high", text::chat::kEffortAbsoluteMax}, {"max", text::chat::kEffortBeyondMax}}}}) {
    auto codec = make_text_codec("", test::vendored_tokenizer_dir(), r.revision);
    ASSERT_TRUE(codec.ok()) << codec.status().to_string();
    EXPECT_EQ((*codec)->encoder_revision(), r.revision);
    for (const Case& c : r.cases) {
      const std::string effort = *c.effort ? std::string(R"(,"reasoning_effort":")") + c.effort + "\"" : "";
      auto req = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"Hi"}])" + effort + "}",
                                    r.revision);
      ASSERT_TRUE(req.ok()) << req.status().to_string();
      auto ids = (*codec)->encode_chat(*req);
      ASSERT_TRUE(ids.ok()) << ids.status().to_string();
      auto stream = (*codec)->new_token_decoder();
      std::string text;
      for (int32_t id : *ids) text += stream->push(id);
      EXPECT_EQ(text, std::string(text::chat::kBos) + std::string(c.prefix) + "<｜User｜>Hi<｜Assistant｜><think>")
          << c.effort;
    }
  }
}

// A V4.1 codec renders V4.1's prompt (v4.1 §11.2), forces the opening of a call in V4.1's tags
// and parses the model's V4.1 calls (v4.1 §11.3). The V4 tokenizer stands in for V4.1's, which
// is not available: the texts are compared, not the ids.
TEST(TextCodec, V41RendersSteersAndParsesItsDialect) {
  auto c = make_text_codec("", test::vendored_tokenizer_dir(), text::EncoderRevision::v41);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const TextCodec& codec = **c;
  auto text_of = [&](const std::vector<int32_t>& ids) {
    auto stream = codec.new_token_decoder();
    std::string out;
    for (int32_t id : ids) out += stream->push(id);
    return out + stream->finish();
  };
  const std::string tools = R"(,"tools":[{"type":"function","function":{"name":"get_weather","parameters":
    {"type":"object","properties":{"city":{"type":"string"}}}}}])";
  auto req = parse_chat_request(R"({"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"w?"}],
    "reasoning_effort":"80","tool_choice":{"type":"function","function":{"name":"get_weather"}})" + tools + "}",
                                text::EncoderRevision::v41);
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  auto ids = codec.encode_chat(*req);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  const std::string prompt = text_of(*ids);
  EXPECT_EQ(prompt.rfind("<｜begin▁of▁sentence｜><｜System｜>Reasoning Effort: 80 (range 1-100, the higher the value, "
                         "the more thorough the reasoning)\n\nS\n\n## Tools\n\n",
                         0),
            0u)
      << prompt;
  EXPECT_NE(prompt.find("writing a \"<｜DSML｜ calls>\" block"), std::string::npos);
  EXPECT_TRUE(prompt.ends_with("<｜User｜>w?<｜Assistant｜><think>")) << prompt;

  const text::OutputSteering s = codec.steering(*req);
  const std::string opening = text_of(s.answer_prefix);
  EXPECT_EQ(opening, "\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke name=\"get_weather\">\n");
  auto parser = codec.new_output_parser(*req);
  std::vector<ToolCallDelta> calls;
  for (const std::string& piece : {std::string("hmm</think>"), opening,
                                  std::string("<｜DSML｜ parameter name=\"city\" string=\"true\">Paris</｜DSML｜ parameter>\n"
                                              "</｜DSML｜ invoke>\n</｜DSML｜ calls><｜end▁of▁sentence｜>")}) {
    auto d = push(*parser, piece);
    calls.insert(calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  }
  auto tail = finish(*parser);
  calls.insert(calls.end(), tail.tool_calls.begin(), tail.tool_calls.end());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[1].arguments, R"({"city": "Paris"})");
}

// tool_choice enforcement with the official V4 tokenizer (the demo model's has no DSML token).
TEST(TextCodec, SteeringForcesTheToolCallOpeningAtATokenBoundary) {
  // No model directory: the vendored official tokenizer.
  auto c = make_text_codec("", test::vendored_tokenizer_dir(), kPreview);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const TextCodec& codec = **c;
  const std::string tools = R"(,"tools":[
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
    {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}])";
  auto req = [&](const std::string& extra) {
    auto r = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"w?"}])" + tools + extra + "}",
                                kPreview);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : ChatRequest{};
  };
  auto text_of = [&](const std::vector<int32_t>& ids) {
    auto stream = codec.new_token_decoder();
    std::string out;
    for (int32_t id : ids) out += stream->push(id);
    return out + stream->finish();
  };
  const std::string call =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" "
      "string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  const std::vector<int32_t> call_ids = codec.encode_text(call);  // BOS + the call
  auto is_prefix_of_call = [&](const std::vector<int32_t>& ids) {
    return ids.size() < call_ids.size() && std::equal(ids.begin(), ids.end(), call_ids.begin() + 1);
  };
  const int32_t think_end = codec.encode_text("</think>")[1];
  const int32_t dsml = codec.encode_text("｜DSML｜")[1];
  const int32_t bos = codec.encode_text("")[0];

  // Named: the invoke header with the name, tokenized as the complete call tokenizes, so the
  // model goes on from its own ids; the parser then returns the call.
  ChatRequest named = req(R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}})");
  text::OutputSteering s = codec.steering(named);
  EXPECT_EQ(s.answer_start_token, think_end);
  EXPECT_EQ(text_of(s.answer_prefix), "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n");
  EXPECT_TRUE(is_prefix_of_call(s.answer_prefix));
  auto parser = codec.new_output_parser(named);
  std::vector<ToolCallDelta> calls;
  for (const std::string& piece : {std::string("thinking</think>"), text_of(s.answer_prefix),
                                   call.substr(text_of(s.answer_prefix).size())}) {
    auto d = push(*parser, piece);
    calls.insert(calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  }
  auto tail = finish(*parser);
  calls.insert(calls.end(), tail.tool_calls.begin(), tail.tool_calls.end());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[1].arguments, R"({"city": "Paris"})");

  // A function without parameters gets the empty invoke's blank line.
  EXPECT_EQ(text_of(codec.steering(req(R"(,"tool_choice":{"type":"function","function":{"name":"now"}})")).answer_prefix),
            "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"now\">\n\n");
  // Required: the block up to the next ｜DSML｜ token; the model names the function.
  s = codec.steering(req(R"(,"tool_choice":"required")"));
  EXPECT_EQ(text_of(s.answer_prefix), "\n\n<｜DSML｜tool_calls>\n<｜DSML｜");
  EXPECT_TRUE(is_prefix_of_call(s.answer_prefix));
  EXPECT_EQ(s.answer_prefix.back(), dsml);
  // None bans the token that opens a call; auto steers nothing. BOS is never part of an answer.
  s = codec.steering(req(R"(,"tool_choice":"none")"));
  EXPECT_EQ(s.banned_tokens, (std::vector<int32_t>{bos, dsml}));
  EXPECT_TRUE(s.answer_prefix.empty());
  s = codec.steering(req(""));
  EXPECT_TRUE(s.answer_prefix.empty());
  EXPECT_EQ(s.banned_tokens, std::vector<int32_t>{bos});
  // Non-thinking mode: the answer opens the output.
  ChatRequest chat = req(R"(,"tool_choice":"required","reasoning_effort":"none")");
  chat.thinking.budget = 5;
  s = codec.steering(chat);
  EXPECT_EQ(s.answer_start_token, -1);
  EXPECT_EQ(s.thinking_budget, 0);
  EXPECT_FALSE(s.answer_prefix.empty());
}

// Strict tools with the official tokenizer, V4 and V4.1 dialects: the constraint starts after
// the forced opening and lets the model's own tokens of a valid call through, marker and EOS
// included, but not a wrong value.
TEST(TextCodec, StrictToolsConstrainTheCallFromTheForcedOpening) {
  for (text::EncoderRevision rev : {kPreview, text::EncoderRevision::v41}) {
    SCOPED_TRACE(std::string(text::encoder_revision_name(rev)));
    auto c = make_text_codec("", test::vendored_tokenizer_dir(), rev);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const TextCodec& codec = **c;
    const text::chat::DsmlTags& t = text::dsml_tags(rev);
    const std::string body = R"({"model":"m","messages":[{"role":"user","content":"w?"}],"reasoning_effort":"none",
        "tools":[{"type":"function","function":{"name":"get_weather","strict":true,"parameters":{"type":"object",
        "properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"],
        "additionalProperties":false}}}])";
    const std::string call = "\n\n" + std::string(t.calls_open) + "\n" + std::string(t.invoke_open_prefix) +
                             "get_weather\">\n" + std::string(t.param_open_prefix) + "city\" string=\"true\">Paris" +
                             std::string(t.param_close) + "\n" + std::string(t.param_open_prefix) +
                             "days\" string=\"false\">3" + std::string(t.param_close) + "\n" +
                             std::string(t.invoke_close) + "\n" + std::string(t.calls_close);
    for (const char* choice : {"", R"(,"tool_choice":"required")",
                               R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}})"}) {
      SCOPED_TRACE(choice);
      auto req = parse_chat_request(body + choice + "}", rev);
      ASSERT_TRUE(req.ok()) << req.status().to_string();
      text::OutputSteering s = codec.steering(*req);
      ASSERT_TRUE(s.constraint);
      std::string forced;
      {
        auto stream = codec.new_token_decoder();
        for (int32_t id : s.answer_prefix) forced += stream->push(id);
        forced += stream->finish();
      }
      ASSERT_EQ(call.compare(0, forced.size(), forced), 0) << forced;
      std::vector<int32_t> rest = codec.encode_text(call.substr(forced.size()));
      rest.erase(rest.begin());  // BOS
      rest.push_back(codec.encode_text(std::string(text::chat::kEos))[1]);
      std::vector<float> logits(129280);
      for (int32_t id : rest) {
        std::fill(logits.begin(), logits.end(), 0.0f);
        ASSERT_TRUE(s.constraint->mask(logits));
        ASSERT_TRUE(std::isfinite(logits[size_t(id)])) << "token " << id << " '" << codec.token_text(id) << "'";
        s.constraint->advance(id);
      }
      // A fraction for the integer is refused where the value starts.
      auto wrong = codec.steering(*req).constraint;
      const std::string before_days = call.substr(forced.size(), call.find("\">3") + 2 - forced.size());
      std::vector<int32_t> ids = codec.encode_text(before_days);
      ids.erase(ids.begin());
      for (int32_t id : ids) wrong->advance(id);
      std::fill(logits.begin(), logits.end(), 0.0f);
      ASSERT_TRUE(wrong->mask(logits));
      EXPECT_FALSE(std::isfinite(logits[size_t(codec.encode_text(".")[1])]));
      EXPECT_FALSE(std::isfinite(logits[size_t(codec.encode_text("\"")[1])]));
    }
  }
}

}  // namespace
}  // namespace dsv4::server

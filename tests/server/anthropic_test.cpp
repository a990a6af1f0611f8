#include "server/anthropic.h"

#include <gtest/gtest.h>

#include "chat_messages_json.h"

#include "server/auth.h"
#include "server/errors.h"
#include "server/openai.h"
#include "server/text_codec.h"
#include "test_paths.h"

namespace dsv4::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr text::EncoderRevision kPreview = text::EncoderRevision::v4;
constexpr text::EncoderRevision k0731 = text::EncoderRevision::v4_flash_0731;

Result<ChatRequest> messages(const std::string& extra, const std::string& msgs = R"([{"role":"user","content":"hi"}])",
                             text::EncoderRevision revision = kPreview) {
  return parse_messages_request(R"({"model":"m","max_tokens":64,"messages":)" + msgs + extra + "}", revision);
}

// Fields the Messages API does not have are refused in Anthropic's words; features this server
// lacks are refused naming them.
TEST(Anthropic, NoFieldIsSilentlyIgnored) {
  auto unknown = messages(R"(,"temprature":0.5)");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "temprature: Extra inputs are not permitted");
  EXPECT_EQ(messages(R"(,"metadata":{"user_id":"u","x":1})").status().message(), "x: Extra inputs are not permitted");
  EXPECT_TRUE(messages(R"(,"service_tier":"auto","metadata":{"user_id":"u"})").ok());
  for (const char* extra : {R"(,"mcp_servers":[{"type":"url","url":"https://x","name":"x"}])",
                            R"(,"container":"c1")"}) {
    auto r = messages(extra);
    ASSERT_FALSE(r.ok()) << extra;
    EXPECT_NE(r.status().message().find("not supported"), std::string::npos) << r.status().message();
  }
  // strict tools are enforced where their schema can be (text/dsml_matcher.h), refused otherwise.
  auto loose = messages(R"(,"tools":[{"name":"t","input_schema":{},"strict":true}])");
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("'tools[0].input_schema' must be an object schema"), std::string::npos)
      << loose.status().message();
  auto strict = messages(R"(,"tools":[{"name":"t","input_schema":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}])");
  ASSERT_TRUE(strict.ok()) << strict.status().message();
  ASSERT_EQ(strict->tools.size(), 1u);
  EXPECT_TRUE(strict->tools[0].strict);
  // count_tokens takes the whole request body (sampling fields cannot change the count).
  EXPECT_TRUE(parse_messages_request(R"({"model":"m","max_tokens":5,"temperature":1,"messages":[{"role":"user","content":"x"}]})",
                                     kPreview, /*count_tokens=*/true)
                  .ok());
}

// context_management: clear_thinking is what the encoder does by default (keep the current
// turn's thinking), keep "all" renders all of it; other edits are refused.
TEST(Anthropic, ContextManagementClearThinking) {
  const std::string on = R"(,"thinking":{"type":"enabled","budget_tokens":16})";
  auto all = messages(on + R"(,"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]})");
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_TRUE(all->keep_thinking);
  auto one = messages(on + R"(,"context_management":{"edits":[{"type":"clear_thinking_20251015",
                                "keep":{"type":"thinking_turns","value":1}}]})");
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_FALSE(one->keep_thinking);
  EXPECT_FALSE(messages(on + R"(,"context_management":{"edits":[{"type":"clear_thinking_20251015"}]})")->keep_thinking);
  struct Refused { std::string extra; const char* needle; };
  for (const Refused& c :
       {Refused{on + R"(,"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]})", "clear_tool_uses"},
        Refused{on + R"(,"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":{"type":"thinking_turns","value":3}}]})",
                "'context_management.edits[0].keep'"},
        Refused{R"(,"thinking":{"type":"disabled"},"context_management":{"edits":[{"type":"clear_thinking_20251015"}]})",
                "requires thinking"},
        Refused{on + R"(,"context_management":{"edits":{}})", "must be an array"}}) {
    auto r = messages(c.extra);
    ASSERT_FALSE(r.ok()) << c.extra;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
}

TEST(Anthropic, ConvertsSystemMessagesAndBlocksToChatMessages) {
  auto r = messages(R"(,"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use tools."}])",
                    R"([
      {"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},
      {"role":"assistant","content":[
        {"type":"thinking","thinking":"need the tool","signature":"sig"},
        {"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","days":2}}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"toolu_1","content":"21C"},
        {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"is_error":true},
        {"type":"text","text":"And tomorrow?"}]}])");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const json m = messages_json(r->messages);
  ASSERT_EQ(m.size(), 6u) << m.dump();
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m[0]["content"], "Be brief.\n\nUse tools.");
  EXPECT_EQ(m[1]["role"], "user");
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["content"], "Checking.");
  EXPECT_EQ(m[2]["reasoning_content"], "need the tool");
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["name"], "get_weather");
  // The input object keeps its key order for the DSML rendering.
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"], R"({"city": "Paris", "days": 2})");
  EXPECT_EQ(m[3], json::parse(R"({"role":"tool","tool_call_id":"toolu_1","content":"21C"})"));
  EXPECT_EQ(m[4]["tool_call_id"], "toolu_2");
  EXPECT_EQ(m[4]["content"], "a\n\nb");
  EXPECT_EQ(m[5]["role"], "user");
  EXPECT_EQ(r->thinking.mode, ThinkingMode::chat);  // Anthropic's default: no thinking unless asked
  EXPECT_EQ(messages(R"(,"thinking":{"type":"adaptive"})")->thinking.mode, ThinkingMode::thinking);
  EXPECT_EQ(messages(R"(,"thinking":{"type":"enabled","budget_tokens":10})")->thinking.mode, ThinkingMode::thinking);
  // A system message inside `messages` stays where it stands.
  auto mid = messages("", R"([{"role":"user","content":"a"},{"role":"assistant","content":"b"},
                              {"role":"system","content":[{"type":"text","text":"Now be brief."}]},
                              {"role":"user","content":"c"}])");
  ASSERT_TRUE(mid.ok()) << mid.status().to_string();
  ASSERT_EQ(mid->messages.size(), 4u);
  EXPECT_EQ(messages_json(mid->messages)[2], json::parse(R"({"role":"system","content":"Now be brief."})"));
  // System messages after the last user message (Claude Code's environment) go just before it:
  // the assistant's turn opens right after a user message.
  auto tail = messages("", R"([{"role":"user","content":"a"},{"role":"system","content":"cwd: /x"},
                               {"role":"system","content":"os: linux"}])");
  ASSERT_TRUE(tail.ok()) << tail.status().to_string();
  ASSERT_EQ(tail->messages.size(), 3u);
  EXPECT_EQ(tail->messages[0].content, "cwd: /x");
  EXPECT_EQ(tail->messages[1].content, "os: linux");
  EXPECT_EQ(tail->messages[2].role, "user");
}

TEST(Anthropic, ToolsToolChoiceSamplingAndThinking) {
  const std::string tools =
      R"(,"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
                   {"name":"now","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}])";
  auto r = messages(tools + R"(,"tool_choice":{"type":"tool","name":"now"},"temperature":0.2,"top_p":0.9,"top_k":5,
                     "stop_sequences":["END"],"stream":true,"metadata":{"user_id":"u1"})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(text::tool_schema_line(r->tools[0]),
            R"({"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}})");
  EXPECT_EQ(r->tool_choice, ToolChoice::named);
  EXPECT_EQ(r->tool_choice_name, "now");
  EXPECT_FLOAT_EQ(r->gen.sampling.temperature, 0.2f);
  EXPECT_EQ(r->gen.sampling.top_k, 5);
  EXPECT_EQ(r->gen.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r->gen.stream);
  EXPECT_EQ(r->gen.user, "u1");
  EXPECT_EQ(r->gen.max_tokens, 64);
  EXPECT_EQ(messages(tools + R"(,"tool_choice":{"type":"any"})")->tool_choice, ToolChoice::required);
  EXPECT_EQ(messages(tools + R"(,"tool_choice":{"type":"none"})")->tool_choice, ToolChoice::none);
  EXPECT_EQ(messages(tools + R"(,"tool_choice":{"type":"auto","disable_parallel_tool_use":true})")->tool_choice,
            ToolChoice::auto_);
  EXPECT_FALSE(messages(tools + R"(,"tool_choice":{"type":"tool","name":"other"})").ok());
  EXPECT_FALSE(messages(R"(,"tool_choice":{"type":"any"})").ok());  // no tools
  EXPECT_FALSE(messages(R"(,"tool_choice":"auto")").ok());

  EXPECT_EQ(messages(R"(,"thinking":{"type":"disabled"})")->thinking.mode, ThinkingMode::chat);
  auto t = messages(R"(,"thinking":{"type":"enabled","budget_tokens":16})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->thinking.mode, ThinkingMode::thinking);
  EXPECT_EQ(t->thinking.budget, 16);
  EXPECT_FALSE(messages(R"(,"thinking":{"type":"enabled","budget_tokens":64})").ok());  // not below max_tokens
  EXPECT_FALSE(messages(R"(,"thinking":{"type":"enabled","budget_tokens":0})").ok());
  EXPECT_FALSE(messages(R"(,"thinking":{"type":"sometimes"})").ok());
}

// output_config.effort selects the level DeepSeek's API maps it to for the served encoder
// (preview: low / medium -> high; 0731: medium -> high); anything else is refused, naming the
// accepted names and the levels.
TEST(Anthropic, EffortMapsToALevelOfTheServedEncoder) {
  const std::string hi = R"([{"role":"user","content":"hi"}])";
  auto effort = [&](const std::string& level, text::EncoderRevision revision) {
    return messages(R"(,"thinking":{"type":"adaptive"},"output_config":{"effort":")" + level + R"("})", hi, revision);
  };
  struct Case { text::EncoderRevision revision; const char* requested; const char* level; };
  for (Case c : {Case{kPreview, "low", "high"}, Case{kPreview, "medium", "high"}, Case{kPreview, "high", "high"},
                 Case{kPreview, "max", "max"}, Case{k0731, "low", "low"}, Case{k0731, "medium", "high"},
                 Case{k0731, "high", "high"}, Case{k0731, "max", "max"}}) {
    auto r = effort(c.requested, c.revision);
    ASSERT_TRUE(r.ok()) << c.requested << ": " << r.status().to_string();
    EXPECT_EQ(r->thinking.effort, c.level) << c.requested;
    EXPECT_EQ(r->thinking.mode, ThinkingMode::thinking);
  }
  auto bad = effort("extreme", k0731);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "'output_config.effort' must be one of minimal, low, medium, high, xhigh, max (the served model's "
            "v4-flash-0731 chat encoder has the levels low, high, max), not 'extreme'");
  // Thinking off: the effort is kept (and checked) but chat mode renders no prefix for it.
  auto off = messages(R"(,"thinking":{"type":"disabled"},"output_config":{"effort":"max"})");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->thinking.mode, ThinkingMode::chat);
  EXPECT_FALSE(messages(R"(,"thinking":{"type":"disabled"},"output_config":{"effort":"extreme"})").ok());
}

// V4.1: the released table (xhigh -> high outside the encoder, v4.1 §11.4) and numbers 1-100;
// image blocks are refused as for V4.
TEST(Anthropic, V41EffortAndImages) {
  constexpr text::EncoderRevision kV41 = text::EncoderRevision::v41;
  const std::string hi = R"([{"role":"user","content":"hi"}])";
  auto effort = [&](const std::string& level) {
    return messages(R"(,"thinking":{"type":"adaptive"},"output_config":{"effort":")" + level + R"("})", hi, kV41);
  };
  struct Case { const char* requested; const char* level; };
  for (Case c : {Case{"low", "low"}, Case{"medium", "high"}, Case{"high", "high"}, Case{"xhigh", "high"},
                 Case{"max", "max"}, Case{"60", "60"}}) {
    auto r = effort(c.requested);
    ASSERT_TRUE(r.ok()) << c.requested << ": " << r.status().to_string();
    EXPECT_EQ(r->thinking.effort, c.level) << c.requested;
  }
  EXPECT_NE(effort("0").status().message().find("v4.1 chat encoder has the levels low, high, max, 1-100"),
            std::string::npos);
  auto img = messages("", R"([{"role":"user","content":[{"type":"image","source":{}}]}])", kV41);
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("not supported"), std::string::npos) << img.status().message();
}

TEST(Anthropic, AFinalAssistantMessageIsAPrefill) {
  auto r = messages("", R"([{"role":"user","content":"Write code"},{"role":"assistant","content":"```python\n"}])");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->messages.back().prefix);
  EXPECT_EQ(r->thinking.mode, ThinkingMode::chat);
  EXPECT_FALSE(messages(R"(,"thinking":{"type":"enabled"})",
                        R"([{"role":"user","content":"x"},{"role":"assistant","content":"y"}])")
                   .ok());
}

TEST(Anthropic, RejectsBadRequestsNamingTheField) {
  auto err = [](const std::string& body) {
    auto r = parse_messages_request(body, kPreview);
    EXPECT_FALSE(r.ok()) << body;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").find("max_tokens"), std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})").find("max_tokens"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[]})").find("messages"), std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]})").find("role"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})").find("no content"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]})")
                .find("messages[0].content[0]"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]})")
                .find("tool_use_id"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
                    "tools":[{"type":"web_search_20250305","name":"web_search"}]})")
                .find("server tools"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
                    "tools":[{"name":"f"}]})")
                .find("input_schema"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"temperature":3})")
                .find("temperature"),
            std::string::npos);
  EXPECT_NE(err("{nope").find("JSON"), std::string::npos);
  // count_tokens needs no max_tokens.
  EXPECT_TRUE(
      parse_messages_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", kPreview, true).ok());
}

TEST(Anthropic, BlocksFollowTheOutputForBothResponseShapes) {
  MessageBlocks b;
  std::vector<json> ev;
  auto add = [&](std::vector<json> e) { ev.insert(ev.end(), e.begin(), e.end()); };
  ChatDelta d1;
  d1.reasoning = "hmm";
  add(b.push(d1));
  ChatDelta d2;
  d2.reasoning = " ok";
  d2.content = "Sure.";
  add(b.push(d2));
  ChatDelta d3;
  d3.tool_calls.push_back({0, "call_abc", "get_weather", ""});
  d3.tool_calls.push_back({0, "", "", R"({"city": "Paris"})"});
  add(b.push(d3));
  add(b.finish());
  const json expected_content = json::parse(R"([
    {"type":"thinking","thinking":"hmm ok","signature":""},
    {"type":"text","text":"Sure."},
    {"type":"tool_use","id":"toolu_abc","name":"get_weather","input":{"city":"Paris"}}])");
  EXPECT_EQ(b.content(), expected_content);
  std::vector<std::string> kinds;
  for (const json& e : ev) {
    std::string k = e["type"];
    if (e.contains("delta")) k += ":" + e["delta"]["type"].get<std::string>();
    kinds.push_back(k + "@" + std::to_string(e["index"].get<int>()));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{
                       "content_block_start@0", "content_block_delta:thinking_delta@0",
                       "content_block_delta:thinking_delta@0", "content_block_stop@0", "content_block_start@1",
                       "content_block_delta:text_delta@1", "content_block_stop@1", "content_block_start@2",
                       "content_block_delta:input_json_delta@2", "content_block_stop@2"}));
  EXPECT_EQ(ev[7]["content_block"]["input"], json::object());  // input arrives as deltas
  EXPECT_EQ(ev[8]["delta"]["partial_json"], R"({"city": "Paris"})");

  MessageBlocks empty;
  auto e = empty.finish();
  EXPECT_EQ(empty.content(), json::parse(R"([{"type":"text","text":""}])"));
  EXPECT_EQ(e.size(), 2u);
}

TEST(Anthropic, StopReasonUsageMessageAndSse) {
  using runtime::FinishReason;
  EXPECT_EQ(messages_stop_reason(FinishReason::stop, false, false), "end_turn");
  EXPECT_EQ(messages_stop_reason(FinishReason::stop, false, true), "tool_use");
  EXPECT_EQ(messages_stop_reason(FinishReason::length, false, true), "max_tokens");
  EXPECT_EQ(messages_stop_reason(FinishReason::stop, true, false), "stop_sequence");
  EXPECT_EQ(messages_stop_reason(FinishReason::error, false, false), "");
  const json u = messages_usage(100, 60, 7);
  EXPECT_EQ(u["input_tokens"], 40);
  EXPECT_EQ(u["cache_read_input_tokens"], 60);
  EXPECT_EQ(u["output_tokens"], 7);
  const json m = message_json("msg_1", "m", json::array(), "end_turn", "", u);
  EXPECT_EQ(m["type"], "message");
  EXPECT_EQ(m["role"], "assistant");
  EXPECT_TRUE(m["stop_sequence"].is_null());
  EXPECT_EQ(message_json("msg_1", "m", json::array(), "", "END", u)["stop_sequence"], "END");
  EXPECT_TRUE(message_json("msg_1", "m", json::array(), "", "", u)["stop_reason"].is_null());
  EXPECT_EQ(messages_sse({{"type", "message_stop"}}), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

TEST(Anthropic, ErrorsAndKeys) {
  EXPECT_EQ(api_style_for_path("/v1/messages"), ApiStyle::anthropic);
  EXPECT_EQ(api_style_for_path("/v1/messages/count_tokens"), ApiStyle::anthropic);
  EXPECT_EQ(api_style_for_path("/v1/messagesX"), ApiStyle::openai);
  EXPECT_EQ(api_style_for_path("/v1/chat/completions"), ApiStyle::openai);
  json e = json::parse(error_body(ApiStyle::anthropic, Status::not_found("no such model")));
  EXPECT_EQ(e, json::parse(R"({"type":"error","error":{"type":"not_found_error","message":"no such model"}})"));
  EXPECT_EQ(json::parse(error_body(ApiStyle::anthropic, Status::invalid_argument("x")))["error"]["type"],
            "invalid_request_error");
  EXPECT_EQ(json::parse(error_body(ApiStyle::anthropic, Status::resource_exhausted("x")))["error"]["type"],
            "rate_limit_error");
  EXPECT_EQ(json::parse(error_body(ApiStyle::anthropic, 401, "k", "authentication_error", ""))["error"]["type"],
            "authentication_error");
  EXPECT_EQ(json::parse(error_body(ApiStyle::openai, Status::not_found("x")))["error"]["code"], "model_not_found");
  ApiKeys keys({"k1"});
  EXPECT_EQ(keys.check_key("k1"), key_id("k1"));
  EXPECT_FALSE(keys.check_key("k2"));
  EXPECT_FALSE(keys.check_key(""));
}

// An Anthropic request and its OpenAI twin render to the same prompt ids: the Messages API is
// only a different shape over the same chat path.
TEST(Anthropic, RendersLikeTheEquivalentOpenAIRequest) {
  auto codec = make_text_codec(test::demo_model_dir(), test::vendored_tokenizer_dir(), kPreview);
  ASSERT_TRUE(codec.ok()) << codec.status().to_string();
  auto a = parse_messages_request(R"({"model":"m","max_tokens":9,"system":"Be brief.","thinking":{"type":"adaptive"},
    "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "messages":[
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":[{"type":"thinking","thinking":"use the tool"},
        {"type":"tool_use","id":"t1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"21C"},{"type":"text","text":"Thanks"}]}]})",
                                  kPreview);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto o = parse_chat_request(R"({"model":"m","max_tokens":9,
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "messages":[
      {"role":"system","content":"Be brief."},
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":"","reasoning_content":"use the tool",
       "tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"t1","content":"21C"},
      {"role":"user","content":"Thanks"}]})",
                              kPreview);
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  auto ia = (*codec)->encode_chat(*a);
  auto io = (*codec)->encode_chat(*o);
  ASSERT_TRUE(ia.ok() && io.ok());
  EXPECT_EQ(*ia, *io);
}

}  // namespace
}  // namespace dsv4::server

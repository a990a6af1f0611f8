#include "server/openai.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/audit_log.h"
#include "server/auth.h"
#include "server/errors.h"
#include "server/metrics.h"
#include "server/sse.h"

namespace dsv4::server {
namespace {

constexpr text::EncoderRevision kPreview = text::EncoderRevision::v4;
constexpr text::EncoderRevision k0731 = text::EncoderRevision::v4_flash_0731;

Result<ChatRequest> chat(const std::string& extra, text::EncoderRevision revision = kPreview) {
  return parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}])" + extra + "}", revision);
}

TEST(Api, ThinkingModeSelection) {
  EXPECT_EQ(chat("")->thinking.mode, ThinkingMode::thinking);  // V4 thinks by default
  EXPECT_EQ(chat(R"(,"reasoning_effort":"none")")->thinking.mode, ThinkingMode::chat);
  EXPECT_EQ(chat(R"(,"reasoning_effort":"high")")->thinking.mode, ThinkingMode::thinking);
  EXPECT_EQ(chat(R"(,"chat_template_kwargs":{"thinking":false})")->thinking.mode, ThinkingMode::chat);
  EXPECT_EQ(chat(R"(,"reasoning_effort":"none","chat_template_kwargs":{"thinking":true})")->thinking.mode,
            ThinkingMode::thinking);
  EXPECT_EQ(chat(R"(,"thinking":{"type":"disabled"})")->thinking.mode, ThinkingMode::chat);
  EXPECT_FALSE(chat(R"(,"reasoning_effort":"extreme")").ok());
  EXPECT_FALSE(chat(R"(,"chat_template_kwargs":{"thinking":"no"})").ok());
}

// The rule of openai.cpp: "none" is non-thinking on every revision; any other API name selects
// thinking at the level DeepSeek's own API maps it to for the served encoder; other strings get
// a 400 naming the accepted names and the encoder's levels.
TEST(Api, ReasoningEffortMapsToALevelOfTheServedEncoder) {
  auto effort = [](const std::string& level, text::EncoderRevision revision) {
    return chat(R"(,"reasoning_effort":")" + level + R"(")", revision);
  };
  for (auto revision : {kPreview, k0731}) {
    auto none = effort("none", revision);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->thinking.mode, ThinkingMode::chat);
    EXPECT_EQ(none->thinking.effort, "");
    EXPECT_EQ(chat("", revision)->thinking.effort, "");  // the encoder's default
  }
  struct Case { text::EncoderRevision revision; const char* requested; const char* level; };
  for (Case c : {Case{kPreview, "minimal", "high"}, Case{kPreview, "low", "high"}, Case{kPreview, "medium", "high"},
                 Case{kPreview, "high", "high"}, Case{kPreview, "xhigh", "max"}, Case{kPreview, "max", "max"},
                 Case{k0731, "minimal", "low"}, Case{k0731, "low", "low"}, Case{k0731, "medium", "high"},
                 Case{k0731, "high", "high"}, Case{k0731, "xhigh", "max"}, Case{k0731, "max", "max"}}) {
    auto r = effort(c.requested, c.revision);
    ASSERT_TRUE(r.ok()) << c.requested << ": " << r.status().to_string();
    EXPECT_EQ(r->thinking.mode, ThinkingMode::thinking);
    EXPECT_EQ(r->thinking.effort, c.level) << c.requested;
  }
  for (auto revision : {kPreview, k0731})
    for (const char* bad : {"HIGH", "extreme", "ultra"}) {
      auto r = effort(bad, revision);
      ASSERT_FALSE(r.ok()) << bad;
      EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
    }
  EXPECT_EQ(effort("extreme", kPreview).status().message(),
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh, max (the served model's v4 "
            "chat encoder has the levels high, max), not 'extreme'");
  EXPECT_EQ(effort("extreme", k0731).status().message(),
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh, max (the served model's "
            "v4-flash-0731 chat encoder has the levels low, high, max), not 'extreme'");
  // Turning thinking off afterwards keeps the (valid) level; chat mode renders no prefix for it.
  auto off = chat(R"(,"reasoning_effort":"max","thinking":{"type":"disabled"})");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->thinking.mode, ThinkingMode::chat);
}

// V4.1 (v4.1 §11.4): the names map onto the released table (xhigh -> high, as DeepSeek's API
// does: the released encoder has no xhigh), numbers 1-100 pass as strings, and image parts are
// refused as for V4.
TEST(Api, V41ReasoningEffortAndImages) {
  constexpr text::EncoderRevision kV41 = text::EncoderRevision::v41;
  auto effort = [](const std::string& level) { return chat(R"(,"reasoning_effort":")" + level + R"(")", kV41); };
  struct Case { const char* requested; const char* level; };
  for (Case c : {Case{"minimal", "low"}, Case{"low", "low"}, Case{"medium", "high"}, Case{"high", "high"},
                 Case{"xhigh", "high"}, Case{"max", "max"}, Case{"1", "1"}, Case{"80", "80"}, Case{"100", "100"}}) {
    auto r = effort(c.requested);
    ASSERT_TRUE(r.ok()) << c.requested << ": " << r.status().to_string();
    EXPECT_EQ(r->thinking.mode, ThinkingMode::thinking);
    EXPECT_EQ(r->thinking.effort, c.level) << c.requested;
  }
  EXPECT_EQ(effort("none")->thinking.mode, ThinkingMode::chat);
  EXPECT_EQ(effort("101").status().message(),
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh, max, 1-100 (the served "
            "model's v4.1 chat encoder has the levels low, high, max, 1-100), not '101'");
  for (const char* bad : {"0", "50.5", "080"}) EXPECT_FALSE(effort(bad).ok()) << bad;
  EXPECT_FALSE(chat(R"(,"reasoning_effort":"80")", kPreview).ok());  // numbers are V4.1's only
  auto img = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", kV41);
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("content parts of type 'image_url' are not supported"), std::string::npos)
      << img.status().message();
}

TEST(Api, SamplingFieldsAndLimits) {
  auto r = chat(R"(,"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"seed":7,"max_completion_tokens":12,
                   "stop":["\n\n","END"],"presence_penalty":0.5,"logprobs":true,"top_logprobs":3,
                   "stream":true,"stream_options":{"include_usage":true})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FLOAT_EQ(r->gen.sampling.temperature, 0.5f);
  EXPECT_EQ(r->gen.sampling.top_k, 40);
  EXPECT_EQ(r->gen.sampling.seed, std::optional<uint64_t>(7));
  EXPECT_EQ(r->gen.max_tokens, 12);
  EXPECT_EQ(r->gen.stop.size(), 2u);
  EXPECT_EQ(r->gen.sampling.top_logprobs, 3);
  EXPECT_TRUE(r->gen.stream && r->gen.include_usage);
  EXPECT_EQ(chat("")->gen.sampling.top_logprobs, -1);
  EXPECT_FALSE(chat(R"(,"n":2)").ok());
  EXPECT_FALSE(chat(R"(,"top_logprobs":2)").ok());  // needs logprobs: true
  EXPECT_FALSE(chat(R"(,"logprobs":true,"top_logprobs":50)").ok());
  EXPECT_FALSE(chat(R"(,"max_tokens":0)").ok());
  EXPECT_FALSE(chat(R"(,"max_tokens":1.5)").ok());
  EXPECT_FALSE(chat(R"(,"stop":[1])").ok());
  EXPECT_FALSE(chat(R"(,"stop":"")").ok());
  EXPECT_FALSE(chat(R"(,"seed":"x")").ok());
  EXPECT_FALSE(chat(R"(,"stream":"yes")").ok());
}

// Every field of OpenAI's APIs is either honoured, accepted as bookkeeping, or refused naming
// what it is; a field those APIs do not have is refused in OpenAI's words.
TEST(Api, NoFieldIsSilentlyIgnored) {
  auto unknown = chat(R"(,"temprature":0.5)");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "Unrecognized request argument supplied: temprature");
  EXPECT_TRUE(chat(R"(,"store":true,"metadata":{"a":"b"},"service_tier":"auto","prompt_cache_key":"k",
                      "prompt_cache_retention":"in_memory","safety_identifier":"u","user":"x",
                      "response_format":{"type":"text"},"parallel_tool_calls":true,"modalities":["text"],
                      "verbosity":"medium")")
                  .ok());
  struct Refused { const char* extra; const char* needle; };
  for (const Refused& c : {Refused{R"(,"response_format":{"type":"json_schema","json_schema":{}})",
                                   "'response_format.json_schema.name' must be a non-empty string"},
                           Refused{R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":
                                   {"type":"object","properties":{"d":{"type":"string","format":"date"}}}}})",
                                   "'response_format.json_schema.schema.properties.d': unsupported keyword 'format'"},
                           Refused{R"(,"response_format":{"type":"xml"})", "'response_format.type' must be text"},
                           Refused{R"(,"response_format":{"type":"json_object"},"tools":[{"type":"function",
                                   "function":{"name":"f"}}])", "together with 'tools' is not supported"},
                           Refused{R"(,"tools":[{"type":"function","function":{"name":"f","strict":true,
                                   "parameters":{"type":"object"}}}])",
                                   "'tools[0].function.parameters' must list its parameters in 'properties'"},
                           Refused{R"(,"tools":[{"type":"function","function":{"name":"f","strict":true,
                                   "parameters":{"type":"object","properties":{"d":{"type":"string","format":"date"}}}}}])",
                                   "'tools[0].function.parameters.properties.d': unsupported keyword 'format'"},
                           Refused{R"(,"tools":[{"type":"function","function":{"name":"f","description":5}}])",
                                   "'tools[0].function.description' must be a string"},
                           Refused{R"(,"parallel_tool_calls":false)", "'parallel_tool_calls'"},
                           Refused{R"(,"modalities":["text","audio"])", "'modalities'"},
                           Refused{R"(,"verbosity":"low")", "'verbosity'"},
                           Refused{R"(,"audio":{"voice":"alloy"})", "'audio'"},
                           Refused{R"(,"prediction":{"type":"content","content":"x"})", "'prediction'"},
                           Refused{R"(,"web_search_options":{})", "'web_search_options'"},
                           Refused{R"(,"functions":[])", "'functions'"},
                           Refused{R"(,"metadata":{"a":1})", "'metadata.a'"},
                           Refused{R"(,"store":"yes")", "'store'"}}) {
    auto r = chat(c.extra);
    ASSERT_FALSE(r.ok()) << c.extra;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
  auto completion = [](const std::string& extra) {
    return parse_completion_request(R"({"model":"m","prompt":"x")" + extra + "}");
  };
  EXPECT_TRUE(completion(R"(,"best_of":1,"suffix":null,"echo":false)").ok());
  EXPECT_EQ(completion(R"(,"best_of":2)").status().message(), "'best_of' must be 1 (one candidate per request)");
  EXPECT_NE(completion(R"(,"suffix":"}")").status().message().find("fill-in-the-middle"), std::string::npos);
  EXPECT_EQ(completion(R"(,"messages":[])").status().message(), "Unrecognized request argument supplied: messages");
}

// logit_bias: token-id keys as strings (OpenAI's shape), biases in [-100, 100].
TEST(Api, LogitBias) {
  auto r = chat(R"(,"logit_bias":{"50256":-100,"7":2.5})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  using Bias = std::vector<std::pair<int32_t, float>>;
  EXPECT_EQ(r->gen.sampling.logit_bias, (Bias{{50256, -100.0f}, {7, 2.5f}}));
  EXPECT_TRUE(chat(R"(,"logit_bias":null)")->gen.sampling.logit_bias.empty());
  auto completion = parse_completion_request(R"({"model":"m","prompt":"x","logit_bias":{"3":1}})");
  ASSERT_TRUE(completion.ok());
  EXPECT_EQ(completion->gen.sampling.logit_bias, (Bias{{3, 1.0f}}));
  for (const char* bad : {R"(,"logit_bias":[1])", R"(,"logit_bias":{"x":1})", R"(,"logit_bias":{"-1":1})",
                          R"(,"logit_bias":{"1 ":1})", R"(,"logit_bias":{"1":"a"})", R"(,"logit_bias":{"1":101})",
                          R"(,"logit_bias":{"99999999999":1})"}) {
    auto b = chat(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("logit_bias"), std::string::npos) << b.status().message();
  }
}

TEST(Api, MessageShapes) {
  EXPECT_FALSE(parse_chat_request(R"({"model":"m","messages":[]})", kPreview).ok());
  EXPECT_FALSE(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})", kPreview).ok());  // no model
  EXPECT_FALSE(parse_chat_request(R"({"model":"m","messages":[{"role":"user"}]})", kPreview).ok());
  EXPECT_FALSE(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":7}]})", kPreview).ok());
  EXPECT_TRUE(parse_chat_request(
                  R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]})", kPreview)
                  .ok());
  EXPECT_TRUE(parse_chat_request(R"({"model":"m","messages":[{"role":"assistant","tool_calls":[
      {"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]})",
                                 kPreview)
                  .ok());
  EXPECT_FALSE(
      parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"x","tool_calls":[]}]})", kPreview).ok());
  auto e = parse_chat_request(R"([1,2])", kPreview);
  EXPECT_NE(e.status().message().find("JSON object"), std::string::npos);
  // Tools and tool_choice.
  const std::string tools = R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])";
  EXPECT_TRUE(chat(tools + R"(,"tool_choice":{"type":"function","function":{"name":"f"}})").ok());
  EXPECT_FALSE(chat(tools + R"(,"tool_choice":{"type":"function","function":{"name":"g"}})").ok());
  EXPECT_FALSE(chat(R"(,"tool_choice":"required")").ok());
  EXPECT_FALSE(chat(R"(,"tools":[{"type":"retrieval"}])").ok());
}

// Images, audio and files are refused (400), as the Anthropic endpoint refuses its image blocks;
// they used to be dropped with a 200 by the text-only renderer.
TEST(Api, NonTextContentPartsAreRefused) {
  for (const char* part : {R"({"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}})",
                           R"({"type":"input_audio","input_audio":{"data":"AA","format":"wav"}})",
                           R"({"type":"file","file":{"file_id":"f"}})"}) {
    auto r = parse_chat_request(std::string(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},)") +
                                part + "]}]}", kPreview);
    ASSERT_FALSE(r.ok()) << part;
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(r.status().message().find("'messages[0].content[1]': content parts of type"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("not supported"), std::string::npos);
  }
}

// The edge converts the messages once, into what the chat encoder's own JSON reader makes of
// the same array (text::messages_from_json), the DeepSeek fields OpenAI lacks included.
TEST(Api, MessagesAreConvertedOnceAsTheEncoderReadsThem) {
  const std::string msgs = R"([
      {"role":"system","content":"Be brief.","tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}},
      {"role":"user","name":"ann","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"task":"query"},
      {"role":"assistant","content":null,"reasoning_content":"r","tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
        {"type":"function","function":{"name":"g"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"ok"},
      {"role":"developer","content":"d"},
      {"role":"assistant","content":"par","wo_eos":true}])";
  auto r = parse_chat_request(R"({"model":"m","messages":)" + msgs + "}", kPreview);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto expected = text::messages_from_json(nlohmann::ordered_json::parse(msgs));
  ASSERT_TRUE(expected.ok()) << expected.status().to_string();
  ASSERT_EQ(r->messages.size(), expected->size());
  for (size_t i = 0; i < expected->size(); ++i) {
    const text::ChatMessage &a = r->messages[i], &e = (*expected)[i];
    EXPECT_EQ(a.role, e.role) << i;
    EXPECT_EQ(a.content, e.content) << i;
    EXPECT_EQ(a.reasoning_content, e.reasoning_content) << i;
    EXPECT_EQ(a.tool_call_id, e.tool_call_id) << i;
    EXPECT_EQ(a.name, e.name) << i;
    EXPECT_EQ(a.task, e.task) << i;
    EXPECT_EQ(a.prefix, e.prefix) << i;
    EXPECT_EQ(a.tools, e.tools) << i;
    EXPECT_EQ(a.response_format, e.response_format) << i;
    ASSERT_EQ(a.tool_calls.size(), e.tool_calls.size()) << i;
    for (size_t k = 0; k < a.tool_calls.size(); ++k) {
      EXPECT_EQ(a.tool_calls[k].id, e.tool_calls[k].id);
      EXPECT_EQ(a.tool_calls[k].name, e.tool_calls[k].name);
      EXPECT_EQ(a.tool_calls[k].arguments, e.tool_calls[k].arguments);
    }
  }
  // Each field is checked where it is read, and named.
  for (const auto& [m, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"role":"user","content":"x","name":5})", "'messages[0].name' must be a string"},
           {R"({"role":"user","content":"x","prefix":"yes"})", "'messages[0].prefix' must be a boolean"},
           {R"({"role":"system","content":"x","tools":{}})", "'messages[0].tools' must be an array"},
           {R"({"role":"assistant","tool_calls":[{"function":{"name":""}}]})",
            "'messages[0].tool_calls[0].function.name' must not be empty"}}) {
    auto bad = parse_chat_request(R"({"model":"m","messages":[)" + m + "]}", kPreview);
    ASSERT_FALSE(bad.ok()) << m;
    EXPECT_NE(bad.status().message().find(needle), std::string::npos) << bad.status().message();
  }
}

TEST(Api, CompletionPrompts) {
  auto t = parse_completion_request(R"({"model":"m","prompt":"abc","logprobs":2,"echo":true})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->prompt, "abc");
  EXPECT_EQ(t->gen.sampling.top_logprobs, 2);
  EXPECT_TRUE(t->echo);
  auto ids = parse_completion_request(R"({"model":"m","prompt":[0,5,6]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->prompt_ids, (std::vector<int32_t>{0, 5, 6}));
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":["a","b"]})").ok());
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":[0,-1]})").ok());
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":""})").ok());
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":"a","logprobs":true})").ok());
}

TEST(Errors, StatusTableAndBody) {
  EXPECT_EQ(http_error_for(StatusCode::invalid_argument).http_status, 400);
  EXPECT_EQ(http_error_for(StatusCode::out_of_range).http_status, 400);
  EXPECT_EQ(http_error_for(StatusCode::not_found).http_status, 404);
  EXPECT_EQ(http_error_for(StatusCode::resource_exhausted).http_status, 429);
  EXPECT_EQ(http_error_for(StatusCode::internal).http_status, 500);
  auto j = nlohmann::json::parse(error_body(Status::invalid_argument("'x' must be a number")));
  EXPECT_EQ(j["error"]["message"], "'x' must be a number");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_data("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_comment().front(), ':');
}

TEST(Metrics, HistogramsAreCumulative) {
  Metrics m;
  m.observe_ttft(0.03);
  m.observe_ttft(0.2);
  m.observe_ttft(100);
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 429);
  m.add_tokens(10, 5);
  const std::string text = m.render({});
  EXPECT_NE(text.find("dsv4_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dsv4_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("dsv4_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("dsv4_time_to_first_token_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("dsv4_requests_total{endpoint=\"/v1/completions\",status=\"429\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("dsv4_generation_tokens_total 5\n"), std::string::npos);
}

TEST(Auth, BearerKeysAndKeyFile) {
  ApiKeys keys({"alpha", "beta"});
  EXPECT_TRUE(keys.enabled());
  EXPECT_EQ(keys.check("Bearer beta"), key_id("beta"));
  EXPECT_FALSE(keys.check("Bearer gamma"));
  EXPECT_FALSE(keys.check("beta"));
  EXPECT_FALSE(keys.check("Bearer "));
  EXPECT_FALSE(ApiKeys().enabled());
  EXPECT_EQ(key_id("beta").size(), 16u);
  EXPECT_NE(key_id("beta"), key_id("alpha"));
  const auto path = std::filesystem::temp_directory_path() / "dsv4_keys_test.txt";
  std::ofstream(path) << "# comment\n\n  k-one  \nk-two\r\n";
  auto f = ApiKeys::from_file(path.string());
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_TRUE(f->check("Bearer k-one"));
  EXPECT_TRUE(f->check("Bearer k-two"));
  std::ofstream(path) << "# nothing\n";
  EXPECT_FALSE(ApiKeys::from_file(path.string()).ok());
  EXPECT_EQ(ApiKeys::from_file("/nonexistent/keys").status().code(), StatusCode::io_error);
  std::filesystem::remove(path);
}

TEST(AuditLog, FormatsOneJsonLineWithoutTextUnlessAsked) {
  AuditRecord r;
  r.key_id = "abcd";
  r.endpoint = "/v1/chat/completions";
  r.model = "m";
  r.prompt_tokens = 3;
  r.generated_tokens = 4;
  r.finish_reason = "stop";
  r.latency_ms = 12.5;
  r.prompt_text = "secret";
  const std::string line = AuditLog::format(r, false, 1795416186123);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2026-11-23T06:43:06.123Z");
  EXPECT_EQ(j["key_id"], "abcd");
  EXPECT_EQ(j["generated_tokens"], 4);
  EXPECT_FALSE(j.contains("prompt"));
  EXPECT_EQ(nlohmann::json::parse(AuditLog::format(r, true, 0))["prompt"], "secret");
}

}  // namespace
}  // namespace dsv4::server

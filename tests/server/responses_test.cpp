#include "server/responses.h"

#include <gtest/gtest.h>

#include <thread>

#include "chat_messages_json.h"
#include "server/openai.h"
#include "server/text_codec.h"
#include "test_paths.h"

namespace dsv4::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr text::EncoderRevision kPreview = text::EncoderRevision::v4;
constexpr text::EncoderRevision k0731 = text::EncoderRevision::v4_flash_0731;

Result<ResponsesRequest> parse(const std::string& fields, ResponseStore& store,
                               text::EncoderRevision revision = kPreview) {
  return parse_responses_request(R"({"model":"m",)" + fields + "}", revision, store);
}

Result<ResponsesRequest> parse(const std::string& fields, text::EncoderRevision revision = kPreview) {
  ResponseStore store;
  return parse(fields, store, revision);
}

void expect_refused(const std::string& fields, const std::string& needle, text::EncoderRevision revision = kPreview) {
  auto r = parse(fields, revision);
  ASSERT_FALSE(r.ok()) << fields;
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << fields;
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << fields << " -> " << r.status().message();
}

TEST(Responses, ConvertsInputItemsToChatMessages) {
  auto r = parse(R"("instructions":"Be brief.","input":[
      {"role":"developer","content":"Use tools."},
      {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in"},{"type":"input_text","text":"Paris?"}]},
      {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"need "},{"type":"reasoning_text","text":"the tool"}]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking.","annotations":[]}]},
      {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"},
      {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_1","output":"21C"},
      {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]},
      {"role":"system","content":"Answer in French."},
      {"role":"user","content":"Thanks"}])");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const json m = messages_json(r->chat.messages);
  ASSERT_EQ(m.size(), 7u) << m.dump();
  // Instructions first, and the developer message right after them joins them.
  EXPECT_EQ(m[0], json::parse(R"({"role":"system","content":"Be brief.\n\nUse tools."})"));
  EXPECT_EQ(m[1], json::parse(R"({"role":"user","content":"Weather in\n\nParis?"})"));
  // Reasoning, text and both calls are one assistant turn.
  EXPECT_EQ(m[2], json::parse(R"({"role":"assistant","content":"Checking.","reasoning_content":"need the tool","tool_calls":[
      {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]})"));
  EXPECT_EQ(m[3], json::parse(R"({"role":"tool","tool_call_id":"call_1","content":"21C"})"));
  EXPECT_EQ(m[4], json::parse(R"({"role":"tool","tool_call_id":"call_2","content":"noon"})"));
  EXPECT_EQ(m[5], json::parse(R"({"role":"system","content":"Answer in French."})"));
  EXPECT_EQ(m[6], json::parse(R"({"role":"user","content":"Thanks"})"));
  // The conversation to store is the input as given.
  EXPECT_EQ(r->conversation.size(), 10u);
  EXPECT_EQ(r->chat.thinking.mode, ThinkingMode::thinking);  // DeepSeek thinks by default
}

TEST(Responses, AStringInputIsOneUserMessage) {
  auto r = parse(R"("input":"hello")");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(messages_json(r->chat.messages), json::parse(R"([{"role":"user","content":"hello"}])"));
  EXPECT_EQ(r->conversation, ojson::parse(R"([{"type":"message","role":"user","content":"hello"}])"));
  // A reasoning item after an answer opens a new assistant turn.
  auto two = parse(R"("input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},
      {"type":"reasoning","summary":[{"type":"summary_text","text":"not rendered"}]},
      {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
      {"type":"reasoning","content":[{"type":"reasoning_text","text":"again"}]},{"role":"assistant","content":"d"},
      {"role":"user","content":"e"}])");
  ASSERT_TRUE(two.ok()) << two.status().to_string();
  const json m = messages_json(two->chat.messages);
  ASSERT_EQ(m.size(), 5u) << m.dump();
  EXPECT_EQ(m[1], json::parse(R"({"role":"assistant","content":"b"})"));
  EXPECT_EQ(m[2], json::parse(R"({"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]})"));
  EXPECT_EQ(m[3], json::parse(R"({"role":"assistant","content":"d","reasoning_content":"again"})"));
}

TEST(Responses, ToolsToolChoiceSamplingAndEchoedSettings) {
  auto r = parse(R"("input":"hi","max_output_tokens":77,"temperature":0.5,"top_p":0.9,"stream":true,"store":false,
      "user":"u1","metadata":{"k":"v"},"parallel_tool_calls":false,"truncation":"disabled","include":["reasoning.encrypted_content"],
      "text":{"format":{"type":"text"},"verbosity":"low"},"service_tier":"auto","prompt_cache_key":"x",
      "tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}],
      "tool_choice":{"type":"function","name":"get_weather"})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ChatRequest& c = r->chat;
  EXPECT_EQ(c.gen.model, "m");
  EXPECT_EQ(c.gen.max_tokens, 77);
  EXPECT_FLOAT_EQ(c.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(c.gen.sampling.top_p, 0.9f);
  EXPECT_TRUE(c.gen.stream);
  EXPECT_EQ(c.gen.user, "u1");
  EXPECT_FALSE(r->store);
  EXPECT_EQ(c.tools, text::tools_from_json(ojson::parse(R"([{"type":"function","function":{"name":"get_weather",
      "description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])"), "tools").value());
  EXPECT_EQ(c.tool_choice, ToolChoice::named);
  EXPECT_EQ(c.tool_choice_name, "get_weather");
  const json& e = r->echo;
  EXPECT_EQ(e["max_output_tokens"], 77);
  EXPECT_EQ(e["metadata"], json({{"k", "v"}}));
  EXPECT_EQ(e["parallel_tool_calls"], false);
  EXPECT_EQ(e["store"], false);
  EXPECT_EQ(e["text"], json::parse(R"({"format":{"type":"text"},"verbosity":"low"})"));
  EXPECT_EQ(e["tool_choice"], json::parse(R"({"type":"function","name":"get_weather"})"));
  EXPECT_EQ(e["tools"][0]["name"], "get_weather");
  EXPECT_EQ(e["truncation"], "disabled");
  EXPECT_EQ(e["user"], "u1");
  EXPECT_TRUE(e["instructions"].is_null());
  EXPECT_TRUE(e["previous_response_id"].is_null());

  for (const auto& [choice, want] : std::vector<std::pair<std::string, ToolChoice>>{
           {R"("auto")", ToolChoice::auto_}, {R"("none")", ToolChoice::none}, {R"("required")", ToolChoice::required}}) {
    auto t = parse(R"("input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":)" + choice);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->chat.tool_choice, want) << choice;
  }
  // Defaults: thinking, no limit of its own, stored, "auto".
  auto d = parse(R"("input":"hi")");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->chat.gen.max_tokens, 0);
  EXPECT_TRUE(d->store);
  EXPECT_EQ(d->echo["tool_choice"], "auto");
  EXPECT_EQ(d->echo["tools"], json::array());
  EXPECT_EQ(d->echo["reasoning"], json::parse(R"({"effort":null,"summary":null})"));
}

// Namespaces group function tools (Codex CLI sends one): the model sees the functions, and a
// call says which namespace its function came from.
TEST(Responses, NamespacedFunctionTools) {
  auto r = parse(R"("input":"hi","tools":[{"type":"function","name":"shell","parameters":{"type":"object"}},
      {"type":"namespace","name":"agents","description":"Sub-agents","tools":[
        {"type":"function","name":"spawn_agent","description":"Spawn","parameters":{"type":"object"},"strict":false},
        {"type":"function","name":"close_agent"}]}])");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->chat.tools.size(), 3u);
  EXPECT_EQ(text::tool_schema_line(r->chat.tools[1]),
            R"({"name": "spawn_agent", "description": "Spawn", "parameters": {"type": "object"}})");
  EXPECT_EQ(r->chat.tools[2].name, "close_agent");
  EXPECT_EQ(r->tool_namespaces, (std::map<std::string, std::string>{{"close_agent", "agents"}, {"spawn_agent", "agents"}}));
  ResponseBuilder b("resp_n", 1, *r);
  ChatDelta d;
  d.tool_calls.push_back({0, "call_1", "spawn_agent", "{}"});
  d.tool_calls.push_back({1, "call_2", "shell", "{}"});
  (void)b.push(d);
  (void)b.finish(runtime::FinishReason::stop, {1, 0, 1, 0});
  EXPECT_EQ(b.output()[0]["namespace"], "agents");
  EXPECT_FALSE(b.output()[1].contains("namespace"));
  // A call's namespace comes back in the input: accepted, the name says which function it is.
  EXPECT_TRUE(parse(R"("input":[{"role":"user","content":"a"},
      {"type":"function_call","call_id":"c","name":"spawn_agent","namespace":"agents","arguments":"{}"},
      {"type":"function_call_output","call_id":"c","output":"ok"}])").ok());

  expect_refused(R"("input":"hi","tools":[{"type":"function","name":"spawn_agent"},
      {"type":"namespace","name":"agents","tools":[{"type":"function","name":"spawn_agent"}]}])",
                 "the function 'spawn_agent' of namespace 'agents' has the name of another tool");
  expect_refused(R"("input":"hi","tools":[{"type":"namespace","name":"n","tools":[{"type":"custom","name":"x"}]}])",
                 "'tools[0].tools[0]': tools of type 'custom' are not supported");
  expect_refused(R"("input":"hi","tools":[{"type":"namespace","name":"n"}])", "'tools[0].tools' must be an array");
  expect_refused(R"("input":"hi","tools":[{"type":"namespace","tools":[]}])", "'tools[0].name' must be a string");
}

TEST(Responses, ReasoningEffortMapsToALevelOfTheServedEncoder) {
  auto none = parse(R"("input":"hi","reasoning":{"effort":"none"})");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->chat.thinking.mode, ThinkingMode::chat);
  auto high = parse(R"("input":"hi","reasoning":{"effort":"high","summary":"auto"})");
  ASSERT_TRUE(high.ok()) << high.status().to_string();
  EXPECT_EQ(high->chat.thinking.mode, ThinkingMode::thinking);
  EXPECT_EQ(high->chat.thinking.effort, "high");
  EXPECT_EQ(high->echo["reasoning"], json::parse(R"({"effort":"high","summary":"auto"})"));
  // Mapped as DeepSeek's API maps it: the preview has no "low" (-> high); "medium" -> high.
  expect_refused(R"("input":"hi","reasoning":{"effort":"extreme"})",
                 "'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh, max");
  EXPECT_EQ(parse(R"("input":"hi","reasoning":{"effort":"low"})")->chat.thinking.effort, "high");  // preview
  auto low = parse(R"("input":"hi","reasoning":{"effort":"low"})", k0731);
  ASSERT_TRUE(low.ok()) << low.status().to_string();
  EXPECT_EQ(low->chat.thinking.effort, "low");
  auto medium = parse(R"("input":"hi","reasoning":{"effort":"medium"})", k0731);   // Codex's default
  ASSERT_TRUE(medium.ok());
  EXPECT_EQ(medium->chat.thinking.effort, "high");
  EXPECT_EQ(medium->echo["reasoning"]["effort"], "medium");   // the response echoes the request
}

TEST(Responses, RefusesWhatItCannotHonourNamingIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("max_output_tokens":5)", "'input' is required"},
      {R"("input":42)", "'input' must be a string or an array"},
      {R"("input":[])", "'input' holds no message"},
      {R"("input":[{"role":"system","content":"only instructions"}])", "'input' holds no message"},
      {R"("input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}])", "ends with an assistant item"},
      {R"("input":[{"role":"user","content":"a"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}])",
       "ends with an assistant item"},
      {R"("input":[{"role":"wizard","content":"a"}])", "'input[0].role' must be one of"},
      {R"("input":[{"content":"a"}])", "'input[0].role' must be a string"},
      {R"("input":[{"role":"user"}])", "'input[0].content' is required"},
      {R"("input":[7])", "'input[0]' must be an object"},
      {R"("input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x"}]}])",
       "'input[0].content[0]': content parts of type 'input_image' are not supported by this server (text only)"},
      {R"("input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}])", "'input_file' are not supported"},
      {R"("input":[{"role":"user","content":[{"type":"input_text"}]}])", "'input[0].content[0].text' must be a string"},
      {R"("input":[{"role":"user","content":[{"type":"weird","text":"x"}]}])", "must be input_text or output_text"},
      {R"("input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image"}]},{"role":"user","content":"x"}])",
       "'input[0].output[0]': content parts of type 'input_image'"},
      {R"("input":[{"type":"function_call_output","output":"x"}])", "'input[0].call_id' must be a string"},
      {R"("input":[{"type":"function_call","call_id":"c","name":"f"},{"role":"user","content":"x"}])",
       "'input[0].arguments' must be a string"},
      {R"("input":[{"type":"function_call","call_id":"c","name":"a\"b","arguments":"{}"},{"role":"user","content":"x"}])",
       "'input[0].name' must be a tool name"},
      {R"("input":[{"type":"reasoning","content":[{"type":"summary_text","text":"x"}]},{"role":"user","content":"x"}])",
       "'input[0].content[0]' must be {\"type\": \"reasoning_text\""},
      {R"("input":[{"type":"item_reference","id":"msg_1"}])", "item references are not supported"},
      {R"("input":[{"type":"web_search_call","id":"ws_1"}])", "items of type 'web_search_call' are not supported"},
      {R"("input":[{"type":"computer_call_output","call_id":"c"}])", "items of type 'computer_call_output'"},
      {R"("input":"hi","tools":[{"type":"web_search"}])", "'tools[0]': tools of type 'web_search' (built-in tools) are not supported"},
      {R"("input":"hi","tools":[{"type":"file_search","vector_store_ids":[]}])", "tools of type 'file_search'"},
      {R"("input":"hi","tools":[{"type":"code_interpreter"}])", "tools of type 'code_interpreter'"},
      {R"("input":"hi","tools":[{"type":"computer_use_preview"}])", "tools of type 'computer_use_preview'"},
      {R"("input":"hi","tools":[{"type":"image_generation"}])", "tools of type 'image_generation'"},
      {R"("input":"hi","tools":[{"type":"mcp","server_label":"x"}])", "tools of type 'mcp'"},
      {R"("input":"hi","tools":[{"type":"function"}])", "'tools[0].name' must be a string"},
      {R"("input":"hi","tools":[{"type":"function","name":"f","parameters":"x"}])", "'tools[0].parameters' must be an object"},
      {R"("input":"hi","tools":[{"type":"function","name":"f","strict":"yes"}])", "'tools[0].strict' must be a boolean"},
      {R"("input":"hi","tools":{})", "'tools' must be an array"},
      {R"("input":"hi","tool_choice":"sometimes")", "'tool_choice' must be"},
      {R"("input":"hi","tool_choice":"required")", "'tool_choice' requires 'tools'"},
      {R"("input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"})",
       "names the function 'g', which is not in 'tools'"},
      {R"("input":"hi","tool_choice":{"type":"web_search_preview"})", "'tool_choice' of type 'web_search_preview' is not supported"},
      {R"("input":"hi","text":{"format":{"type":"json_schema","schema":{}}})", "'text.format.name' must be"},
      {R"("input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{"type":"number","minimum":1}}})",
       "'text.format.schema': unsupported keyword 'minimum'"},
      {R"("input":"hi","text":{"format":{"type":"json_object"}},"tools":[{"type":"function","name":"f"}])",
       "'text.format' together with 'tools'"},
      {R"("input":"hi","tools":[{"type":"function","name":"f","strict":true,"parameters":{"type":"object"}}])",
       "'tools[0].parameters' must list its parameters in 'properties'"},
      {R"("input":"hi","text":{"format":{"type":"xml"}})", "'text.format.type' must be text"},
      {R"("input":"hi","reasoning":"high")", "'reasoning' must be an object"},
      {R"("input":"hi","reasoning":{"effort":3})", "'reasoning.effort' must be a string"},
      {R"("input":"hi","truncation":"auto")", "'truncation': \"auto\" is not supported"},
      {R"("input":"hi","background":true)", "background responses are not supported"},
      {R"("input":"hi","conversation":"conv_1")", "'conversation' is not supported"},
      {R"("input":"hi","prompt":{"id":"pmpt_1"})", "'prompt' is not supported"},
      {R"("input":"hi","top_logprobs":2)", "log-probabilities are not supported"},
      {R"("input":"hi","include":["message.output_text.logprobs"])", "log-probabilities are not supported"},
      {R"("input":"hi","include":"all")", "'include' must be an array of strings"},
      {R"("input":"hi","metadata":{"k":1})", "'metadata.k' must be a string"},
      {R"("input":"hi","metadata":[])", "'metadata' must be an object"},
      {R"("input":"hi","max_output_tokens":0)", "'max_output_tokens' must be at least 1"},
      {R"("input":"hi","temperature":"hot")", "'temperature' must be a number"},
      {R"("input":"hi","temperature":-1)", "temperature"},
      {R"("input":"hi","store":"yes")", "'store' must be a boolean"},
      {R"("input":"hi","previous_response_id":5)", "'previous_response_id' must be a string"},
      {R"("input":"hi","instructions":["x"])", "'instructions' must be a string"},
      {R"("input":"hi","service_tier":1)", "'service_tier' must be a string"},
  };
  for (const auto& [fields, needle] : cases) expect_refused(fields, needle);
  // 'model' is required; the body must be a JSON object nested at most 128 deep.
  ResponseStore store;
  EXPECT_FALSE(parse_responses_request(R"({"input":"hi"})", kPreview, store).ok());
  EXPECT_FALSE(parse_responses_request("[1]", kPreview, store).ok());
  const std::string deep = R"({"model":"m","input":"hi","metadata":)" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_NE(parse_responses_request(deep, kPreview, store).status().message().find("deeper than 128"), std::string::npos);
  const std::string args = std::string(200, '[') + std::string(200, ']');
  expect_refused(R"("input":[{"type":"function_call","call_id":"c","name":"f","arguments":")" + args +
                     R"("},{"role":"user","content":"x"}])",
                 "'input[0].arguments' nests arrays and objects deeper than 128");
  // A field the Responses API does not have is refused as OpenAI refuses it; its bookkeeping
  // fields (and Codex's client_metadata) are accepted.
  expect_refused(R"("input":"hi","some_future_field":{"x":1})",
                 "Unrecognized request argument supplied: some_future_field");
  EXPECT_TRUE(parse(R"("input":"hi","store":false,"service_tier":"auto","prompt_cache_key":"k",
                       "prompt_cache_retention":"24h","safety_identifier":"u","client_metadata":{"a":"b"})")
                  .ok());
  expect_refused(R"("input":"hi","max_tool_calls":3)", "'max_tool_calls'");
  expect_refused(R"("input":"hi","metadata":{"k":1})", "'metadata.k' must be a string");
}

TEST(Responses, PreviousResponseIdContinuesAStoredConversation) {
  ResponseStore store;
  store.put("resp_1", ojson::parse(R"([{"type":"message","role":"user","content":"Weather in Paris?"},
      {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"use it"}]},
      {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{}","status":"completed"}])"));
  auto r = parse(R"("instructions":"Be brief.","previous_response_id":"resp_1",
      "input":[{"type":"function_call_output","call_id":"call_1","output":"21C"}])",
                 store);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(messages_json(r->chat.messages), json::parse(R"([{"role":"system","content":"Be brief."},
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":"","reasoning_content":"use it","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"21C"}])"));
  EXPECT_EQ(r->conversation.size(), 4u);  // the stored items, then this input
  EXPECT_EQ(r->echo["previous_response_id"], "resp_1");

  // An unknown id is not_found, with OpenAI's code and param.
  auto missing = parse(R"("previous_response_id":"resp_nope","input":"hi")", store);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  const json body = json::parse(responses_error_body(missing.status()));
  EXPECT_EQ(body["error"]["code"], "previous_response_not_found");
  EXPECT_EQ(body["error"]["param"], "previous_response_id");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("resp_nope"), std::string::npos);
  // Other errors keep the common body.
  EXPECT_EQ(json::parse(responses_error_body(Status::invalid_argument("bad")))["error"]["code"], "invalid_request");
}

TEST(Responses, StoreIsBoundedByCountBytesAndAge) {
  auto now = ResponseStore::Clock::time_point{};
  ResponseStore::Limits limits;
  limits.max_responses = 3;
  limits.max_bytes = 100;
  limits.max_age = std::chrono::seconds(60);
  ResponseStore store(limits, [&] { return now; });
  const ojson item = ojson::array({"0123456789"});  // 14 bytes as compact JSON
  for (const char* id : {"a", "b", "c"}) store.put(id, item);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.bytes(), 42u);
  // Count: "a" is used, so "b" is now the least recently used and goes first.
  ASSERT_TRUE(store.get("a"));
  store.put("d", item);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_FALSE(store.get("b"));
  EXPECT_TRUE(store.get("a") && store.get("c") && store.get("d"));
  // Bytes: a 74-byte entry pushes out the two least recently used ones ("a", then "c").
  store.put("big", ojson::array({std::string(70, 'x')}));
  EXPECT_LE(store.bytes(), 100u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.get("big") && store.get("d"));
  // An entry over the whole budget is not kept (and evicts nothing).
  store.put("huge", ojson::array({std::string(200, 'x')}));
  EXPECT_FALSE(store.get("huge"));
  EXPECT_EQ(store.size(), 2u);
  // Replacing an id keeps one entry.
  store.put("d", ojson::array({"new"}));
  EXPECT_EQ(*store.get("d"), ojson::array({"new"}));
  EXPECT_EQ(store.size(), 2u);
  // Age counts from storing, whatever the use.
  now += std::chrono::seconds(61);
  EXPECT_FALSE(store.get("big"));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0u);
}

TEST(Responses, StoreIsThreadSafe) {
  ResponseStore store;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string id = "r" + std::to_string((t * 7 + i) % 50);
        store.put(id, ojson::array({i}));
        (void)store.get("r" + std::to_string(i % 50));
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(store.size(), 50u);
}

std::vector<std::string> types(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["type"]);
  return out;
}

// Appends b to a.
void append(std::vector<json>& a, std::vector<json> b) { a.insert(a.end(), b.begin(), b.end()); }

ResponsesRequest request(const std::string& fields) {
  auto r = parse(fields);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(Responses, EventsOfATextAnswer) {
  const ResponsesRequest rr = request(R"("input":"hi","reasoning":{"effort":"none"},"metadata":{"k":"v"})");
  ResponseBuilder b("resp_abc", 1700000000, rr);
  std::vector<json> ev = b.start();
  ChatDelta d1, d2;
  d1.content = "Hel";
  d2.content = "lo";
  append(ev, b.push(d1));
  append(ev, b.push(d2));
  append(ev, b.push(ChatDelta{}));
  append(ev, b.finish(runtime::FinishReason::stop, {10, 4, 3, 0}));
  EXPECT_EQ(types(ev), (std::vector<std::string>{
                           "response.created", "response.in_progress", "response.output_item.added",
                           "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                           "response.output_text.done", "response.content_part.done", "response.output_item.done",
                           "response.completed"}));
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i]["sequence_number"], i);
  EXPECT_EQ(ev[0]["response"]["status"], "in_progress");
  EXPECT_EQ(ev[0]["response"]["output"], json::array());
  EXPECT_TRUE(ev[0]["response"]["usage"].is_null());
  EXPECT_EQ(ev[2]["item"], json::parse(R"({"id":"msg_abc_0","type":"message","status":"in_progress","role":"assistant","content":[]})"));
  EXPECT_EQ(ev[3]["part"], json::parse(R"({"type":"output_text","annotations":[],"text":""})"));
  EXPECT_EQ(ev[4]["delta"], "Hel");
  EXPECT_EQ(ev[4]["item_id"], "msg_abc_0");
  EXPECT_EQ(ev[4]["output_index"], 0);
  EXPECT_EQ(ev[4]["content_index"], 0);
  EXPECT_EQ(ev[6]["text"], "Hello");

  const json r = b.response();
  EXPECT_EQ(ev.back()["response"], r);
  EXPECT_EQ(r["id"], "resp_abc");
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["created_at"], 1700000000);
  EXPECT_EQ(r["status"], "completed");
  EXPECT_EQ(r["model"], "m");
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_TRUE(r["incomplete_details"].is_null());
  EXPECT_EQ(r["metadata"], json({{"k", "v"}}));
  EXPECT_EQ(r["output"], json::parse(R"([{"id":"msg_abc_0","type":"message","status":"completed","role":"assistant",
      "content":[{"type":"output_text","annotations":[],"text":"Hello"}]}])"));
  EXPECT_EQ(r["usage"], json::parse(R"({"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,
      "output_tokens_details":{"reasoning_tokens":0},"total_tokens":13})"));
  EXPECT_EQ(ev[8]["item"], r["output"][0]);
  EXPECT_EQ(responses_sse(ev[4]), "event: response.output_text.delta\ndata: " + ev[4].dump() + "\n\n");
}

TEST(Responses, EventsOfAReasoningAnswer) {
  ResponseBuilder b("resp_x", 1, request(R"("input":"hi")"));
  std::vector<json> ev;
  ChatDelta d1, d2;
  d1.reasoning = "think";
  d2.reasoning = "ing";
  d2.content = "ok";
  append(ev, b.push(d1));
  append(ev, b.push(d2));
  append(ev, b.finish(runtime::FinishReason::stop, {5, 0, 9, 6}));
  EXPECT_EQ(types(ev), (std::vector<std::string>{
                           "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
                           "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
                           "response.output_item.done", "response.output_item.added", "response.content_part.added",
                           "response.output_text.delta", "response.output_text.done", "response.content_part.done",
                           "response.output_item.done", "response.completed"}));
  EXPECT_EQ(ev[0]["item"], json::parse(R"({"id":"rs_x_0","type":"reasoning","summary":[],"content":[],"status":"in_progress"})"));
  EXPECT_EQ(ev[1]["part"], json::parse(R"({"type":"reasoning_text","text":""})"));
  EXPECT_EQ(ev[3]["delta"], "ing");
  EXPECT_EQ(ev[4]["text"], "thinking");
  EXPECT_EQ(ev[9]["output_index"], 1);
  EXPECT_EQ(ev[9]["item_id"], "msg_x_1");
  const json out = b.response()["output"];
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], json::parse(R"({"id":"rs_x_0","type":"reasoning","summary":[],
      "content":[{"type":"reasoning_text","text":"thinking"}],"status":"completed"})"));
  EXPECT_EQ(out[1]["content"][0]["text"], "ok");
  EXPECT_EQ(b.response()["usage"]["output_tokens_details"]["reasoning_tokens"], 6);
}

TEST(Responses, EventsOfAToolCall) {
  ResponseBuilder b("resp_t", 1, request(R"("input":"hi","tools":[{"type":"function","name":"lookup"}])"));
  std::vector<json> ev;
  ChatDelta d;
  d.content = "Let me look.";
  d.tool_calls.push_back({0, "call_7", "lookup", ""});
  d.tool_calls.push_back({0, "", "", "{\"q\": "});
  d.tool_calls.push_back({0, "", "", "1}"});
  append(ev, b.push(d));
  append(ev, b.finish(runtime::FinishReason::stop, {5, 0, 9, 0}));
  EXPECT_EQ(types(ev), (std::vector<std::string>{
                           "response.output_item.added", "response.content_part.added", "response.output_text.delta",
                           "response.output_text.done", "response.content_part.done", "response.output_item.done",
                           "response.output_item.added", "response.function_call_arguments.delta",
                           "response.function_call_arguments.delta", "response.function_call_arguments.done",
                           "response.output_item.done", "response.completed"}));
  EXPECT_EQ(ev[6]["item"], json::parse(R"({"id":"fc_t_1","type":"function_call","status":"in_progress","arguments":"",
      "call_id":"call_7","name":"lookup"})"));
  EXPECT_EQ(ev[7]["delta"], "{\"q\": ");
  EXPECT_EQ(ev[7]["item_id"], "fc_t_1");
  EXPECT_EQ(ev[9]["arguments"], "{\"q\": 1}");
  EXPECT_EQ(ev[10]["item"], json::parse(R"({"id":"fc_t_1","type":"function_call","status":"completed","arguments":"{\"q\": 1}",
      "call_id":"call_7","name":"lookup"})"));
  EXPECT_EQ(b.response()["output"][1], ev[10]["item"]);
}

TEST(Responses, IncompleteFailedAndEmptyResponses) {
  const ResponsesRequest rr = request(R"("input":"hi","max_output_tokens":4)");
  ResponseBuilder cut("resp_1", 1, rr);
  ChatDelta d;
  d.reasoning = "abcd";
  (void)cut.push(d);
  auto ev = cut.finish(runtime::FinishReason::length, {3, 0, 4, 4});
  EXPECT_EQ(ev.back()["type"], "response.incomplete");
  const json r = cut.response();
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"], json({{"reason", "max_output_tokens"}}));
  EXPECT_EQ(r["output"].size(), 1u);  // the cut reasoning, and no made-up message
  EXPECT_EQ(r["output"][0]["status"], "incomplete");
  EXPECT_EQ(r["max_output_tokens"], 4);

  ResponseBuilder failed("resp_2", 1, rr);
  ev = failed.finish(runtime::FinishReason::error, {3, 0, 0, 0}, "engine error");
  EXPECT_EQ(types(ev), std::vector<std::string>{"response.failed"});
  EXPECT_EQ(failed.response()["error"], json::parse(R"({"code":"server_error","message":"engine error"})"));

  // A completed response with no output at all has one empty message.
  ResponseBuilder empty("resp_3", 1, rr);
  ev = empty.finish(runtime::FinishReason::stop, {3, 0, 1, 0});
  EXPECT_EQ(ev.size(), 6u);
  EXPECT_EQ(empty.response()["output"][0]["content"][0]["text"], "");
}

TEST(Responses, FinishedResponsesAreRememberedWhenAllowed) {
  ResponseStore store;
  auto first = parse(R"("input":"Weather?","tools":[{"type":"function","name":"get_weather"}])", store);
  ASSERT_TRUE(first.ok());
  ResponseBuilder b("resp_1", 1, *first);
  ChatDelta d;
  d.reasoning = "use the tool";
  d.tool_calls.push_back({0, "call_1", "get_weather", "{}"});
  (void)b.push(d);
  (void)b.finish(runtime::FinishReason::stop, {5, 0, 9, 4});
  remember_response(store, *first, b);
  auto kept = store.get("resp_1");
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 3u);  // the input, the reasoning and the call
  EXPECT_EQ((*kept)[2]["call_id"], "call_1");

  // The next turn by id renders exactly as the same conversation sent item by item.
  const std::string tools = R"("tools":[{"type":"function","name":"get_weather"}])";
  auto by_id = parse(tools + R"(,"previous_response_id":"resp_1",
      "input":[{"type":"function_call_output","call_id":"call_1","output":"21C"}])", store);
  ASSERT_TRUE(by_id.ok()) << by_id.status().to_string();
  ojson items = *kept;
  items.push_back(ojson::parse(R"({"type":"function_call_output","call_id":"call_1","output":"21C"})"));
  auto explicit_items = parse(tools + R"(,"input":)" + items.dump(), store);
  ASSERT_TRUE(explicit_items.ok()) << explicit_items.status().to_string();
  EXPECT_EQ(messages_json(by_id->chat.messages), messages_json(explicit_items->chat.messages));

  // store: false, or a failed response: not kept.
  auto unstored = parse(R"("input":"x","store":false)", store);
  ResponseBuilder u("resp_2", 1, *unstored);
  (void)u.finish(runtime::FinishReason::stop, {1, 0, 1, 0});
  remember_response(store, *unstored, u);
  EXPECT_FALSE(store.get("resp_2"));
  ResponseBuilder f("resp_3", 1, *first);
  (void)f.finish(runtime::FinishReason::error, {1, 0, 0, 0}, "boom");
  remember_response(store, *first, f);
  EXPECT_FALSE(store.get("resp_3"));
}

// A Responses request and its chat twin render to the same prompt ids: the Responses API is only
// a different shape over the same chat path.
TEST(Responses, RendersLikeTheEquivalentChatRequest) {
  auto codec = make_text_codec(test::demo_model_dir(), test::vendored_tokenizer_dir(), kPreview);
  ASSERT_TRUE(codec.ok()) << codec.status().to_string();
  auto r = parse(R"("instructions":"Be brief.",
    "tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}],
    "input":[
      {"role":"user","content":"Weather in Paris?"},
      {"type":"reasoning","summary":[],"content":[{"type":"reasoning_text","text":"use the tool"}]},
      {"type":"function_call","call_id":"t1","name":"get_weather","arguments":"{\"city\": \"Paris\"}"},
      {"type":"function_call_output","call_id":"t1","output":"21C"},
      {"role":"user","content":[{"type":"input_text","text":"Thanks"}]}])");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto o = parse_chat_request(R"({"model":"m",
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
  auto ir = (*codec)->encode_chat(r->chat);
  auto io = (*codec)->encode_chat(*o);
  ASSERT_TRUE(ir.ok() && io.ok()) << ir.status().to_string();
  EXPECT_EQ(*ir, *io);
}

}  // namespace
}  // namespace dsv4::server

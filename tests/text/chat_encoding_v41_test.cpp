// The DeepSeek-V4.1 chat encoder (v4.1 §11.2-11.5) and the V4.1 DSML dialect in the completion
// parser. No V4.1 goldens exist in /work/shared/data (its tokenizer and encoder tests were not
// available, v4.1 §14 U4): the vectors below are written by hand from the spec's rendering rules,
// and the spec's own two examples (§11.2) are checked verbatim.
#include <gtest/gtest.h>

#include "text/chat_encoding.h"
#include "text/chat_tokens.h"
#include "text/completion_parser.h"

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kSys = "<｜System｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

std::string effort_line(int n) {
  return "Reasoning Effort: " + std::to_string(n) +
         " (range 1-100, the higher the value, the more thorough the reasoning)\n\n";
}

// The tools section of v4.1 §11.3 for kTools, typed out: V4's words, V4.1's tag names.
const std::string kToolsSection =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"<｜DSML｜ calls>\" block like the following:\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke "
    "name=\"$TOOL_NAME\">\n<｜DSML｜ parameter name=\"$PARAMETER_NAME\" "
    "string=\"true|false\">$PARAMETER_VALUE</｜DSML｜ parameter>\n...\n</｜DSML｜ invoke>\n<｜DSML｜ invoke "
    "name=\"$TOOL_NAME2\">\n...\n</｜DSML｜ invoke>\n</｜DSML｜ calls>\n\nString parameters should be specified as "
    "is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON "
    "format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by <think>), you MUST output your "
    "complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\nOtherwise, output "
    "directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n{\"name\": "
    "\"get_weather\", \"description\": \"Weather\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"city\": {\"type\": \"string\"}}}}\n\nYou MUST strictly follow the above defined tool name and parameter "
    "schemas to invoke tool calls.\n";
const ojson kToolsJson = ojson::parse(R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
const std::vector<ToolDefinition> kTools = tools_from_json(kToolsJson, "tools").value();

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatOptions v41(ThinkingMode mode = ThinkingMode::thinking, std::string effort = "") {
  ChatOptions o;
  o.revision = EncoderRevision::v41;
  o.thinking.mode = mode;
  o.thinking.effort = std::move(effort);
  return o;
}

std::string rendered(const std::vector<ChatMessage>& m, const ChatOptions& o) {
  auto r = render_chat(m, o);
  return r.ok() ? r.value() : "ERROR: " + r.status().to_string();
}

// v4.1 §11.2, "Example (computed from the rules; released table, default effort)".
TEST(ChatEncodingV41, TheSpecsExamples) {
  EXPECT_EQ(rendered({msg("user", "hi")}, v41()),
            "<｜begin▁of▁sentence｜><｜System｜>Reasoning Effort: 75 (range 1-100, the higher the value, the more "
            "thorough the reasoning)\n\n<｜User｜>hi<｜Assistant｜><think>");
  EXPECT_EQ(rendered({msg("system", "S"), msg("user", "hi")}, v41(ThinkingMode::chat)),
            "<｜begin▁of▁sentence｜><｜System｜>S<｜User｜>hi<｜Assistant｜></think>");
}

// Rule 1: <｜System｜> opens the conversation in thinking mode or before a leading system
// message; chat mode writes no effort line, and without a system message no <｜System｜>.
TEST(ChatEncodingV41, SystemTokenAndEffortLineOpenTheConversation) {
  EXPECT_EQ(rendered({msg("user", "hi")}, v41(ThinkingMode::chat)), kBos + "<｜User｜>hi<｜Assistant｜></think>");
  EXPECT_EQ(rendered({msg("system", "S"), msg("user", "hi")}, v41()),
            kBos + kSys + effort_line(75) + "S<｜User｜>hi<｜Assistant｜><think>");
  ChatOptions no_bos = v41();
  no_bos.add_bos = false;
  EXPECT_EQ(rendered({msg("user", "hi")}, no_bos), kSys + effort_line(75) + "<｜User｜>hi<｜Assistant｜><think>");
  // A continuation writes nothing that opens a conversation, whatever the effort.
  ChatOptions more = v41(ThinkingMode::thinking, "max");
  more.add_bos = false;
  more.continuation = true;
  EXPECT_EQ(rendered({msg("user", "again")}, more), "<｜User｜>again<｜Assistant｜><think>");
}

// §11.4: the released table (low 50, high 75 = default, max 100) and integers 1-100 verbatim.
TEST(ChatEncodingV41, ReleasedEffortTable) {
  struct Case { const char* effort; int value; };
  for (const Case& c : {Case{"", 75}, Case{"low", 50}, Case{"high", 75}, Case{"max", 100}, Case{"1", 1},
                        Case{"37", 37}, Case{"100", 100}}) {
    EXPECT_EQ(rendered({msg("user", "hi")}, v41(ThinkingMode::thinking, c.effort)),
              kBos + kSys + effort_line(c.value) + "<｜User｜>hi<｜Assistant｜><think>")
        << c.effort;
    // Chat mode: no line at any level.
    EXPECT_EQ(rendered({msg("user", "hi")}, v41(ThinkingMode::chat, c.effort)),
              kBos + "<｜User｜>hi<｜Assistant｜></think>")
        << c.effort;
  }
  EXPECT_EQ(effort_level_names(EncoderRevision::v41), "low, high, max, 1-100");
  EXPECT_EQ(default_effort_level(EncoderRevision::v41), "high");
}

// The pre-release table's xhigh and anything outside 1-100 are refused by the encoder, in both
// modes (the official encoder asserts on the effort for every message).
TEST(ChatEncodingV41, EffortsOutsideTheReleasedTableAreRefused) {
  for (const char* bad : {"xhigh", "medium", "none", "0", "101", "007", "+5", "50.0", "-1", "High"}) {
    for (ThinkingMode mode : {ThinkingMode::thinking, ThinkingMode::chat}) {
      auto r = render_chat({msg("user", "hi")}, v41(mode, bad));
      ASSERT_FALSE(r.ok()) << bad;
      EXPECT_NE(r.status().message().find("is not a level of the v4.1 chat encoder (its levels: low, high, max, 1-100)"),
                std::string::npos)
          << r.status().message();
    }
  }
  EXPECT_NE(effort_prefix(EncoderRevision::v41, "xhigh").status().message().find("pre-release V4.1 table"),
            std::string::npos);
  // V4 revisions take no numbers.
  EXPECT_FALSE(effort_prefix(EncoderRevision::v4_flash_0731, "75").ok());
}

// The HTTP APIs' names map onto the released levels; xhigh goes to high, as DeepSeek's API does.
TEST(ChatEncodingV41, ApiEffortNames) {
  struct Case { const char* requested, *level; };
  for (const Case& c : {Case{"minimal", "low"}, Case{"low", "low"}, Case{"medium", "high"}, Case{"high", "high"},
                        Case{"xhigh", "high"}, Case{"max", "max"}, Case{"1", "1"}, Case{"100", "100"}}) {
    auto level = api_effort_level(EncoderRevision::v41, c.requested);
    ASSERT_TRUE(level.ok()) << c.requested;
    EXPECT_EQ(*level, c.level);
    EXPECT_TRUE(effort_prefix(EncoderRevision::v41, *level).ok());
  }
  for (const char* bad : {"0", "101", "none", "ultra", "1e2"})
    EXPECT_FALSE(api_effort_level(EncoderRevision::v41, bad).ok()) << bad;
  EXPECT_EQ(api_effort_names(EncoderRevision::v41), "minimal, low, medium, high, xhigh, max, 1-100");
}

// Rule 2: a system message after the first is <｜System｜> + content, counts as a user turn for
// the last-user index (old reasoning is dropped before it) and is followed by the assistant
// header when an answer follows.
TEST(ChatEncodingV41, MidConversationSystemMessages) {
  ChatMessage a1 = msg("assistant", "A1");
  a1.reasoning_content = "R1";
  EXPECT_EQ(rendered({msg("user", "Q1"), a1, msg("system", "Be terse.")}, v41()),
            kBos + kSys + effort_line(75) + "<｜User｜>Q1<｜Assistant｜></think>A1" + kEos +
                "<｜System｜>Be terse.<｜Assistant｜><think>");
  // Followed by a user message: no header in between (consecutive asking turns).
  EXPECT_EQ(rendered({msg("user", "Q1"), msg("system", "S2"), msg("user", "Q2")}, v41(ThinkingMode::chat)),
            kBos + "<｜User｜>Q1<｜System｜>S2<｜User｜>Q2<｜Assistant｜></think>");
  // Reasoning after it is kept; reasoning before it is not.
  ChatMessage a2 = msg("assistant", "A2");
  a2.reasoning_content = "R2";
  EXPECT_EQ(rendered({msg("user", "Q1"), a1, msg("system", "S2"), a2}, v41(ThinkingMode::thinking, "low")),
            kBos + kSys + effort_line(50) + "<｜User｜>Q1<｜Assistant｜></think>A1" + kEos +
                "<｜System｜>S2<｜Assistant｜><think>R2</think>A2" + kEos);
  // In a continuation even the first message is a mid-conversation one.
  ChatOptions more = v41(ThinkingMode::chat);
  more.add_bos = false;
  more.continuation = true;
  EXPECT_EQ(rendered({msg("system", "S3")}, more), "<｜System｜>S3<｜Assistant｜></think>");
  // V4 keeps its own rule: a later system message is its bare content.
  ChatOptions v4;
  v4.thinking.mode = ThinkingMode::chat;
  EXPECT_EQ(rendered({msg("user", "Q1"), msg("system", "S2"), msg("user", "Q2")}, v4),
            kBos + "<｜User｜>Q1S2<｜User｜>Q2<｜Assistant｜></think>");
}

// §11.3: the tools section in V4.1's tags, an assistant's calls in the spaced dialect, tool
// results merged into the next user turn; tools keep all reasoning.
TEST(ChatEncodingV41, ToolsCallsAndResults) {
  ChatMessage call = msg("assistant", "");
  call.reasoning_content = "R1";
  call.tool_calls = {{"c1", "get_weather", R"({"city": "Paris", "days": 3})"}};
  ChatMessage result = msg("tool", "sunny");
  result.tool_call_id = "c1";
  ChatOptions o = v41();
  o.tools = kTools;
  EXPECT_EQ(rendered({msg("system", "S"), msg("user", "Weather in Paris?"), call, result}, o),
            kBos + kSys + effort_line(75) + "S\n\n" + kToolsSection +
                "<｜User｜>Weather in Paris?<｜Assistant｜><think>R1</think>\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke "
                "name=\"get_weather\">\n<｜DSML｜ parameter name=\"city\" string=\"true\">Paris</｜DSML｜ parameter>\n"
                "<｜DSML｜ parameter name=\"days\" string=\"false\">3</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n"
                "</｜DSML｜ calls>" +
                kEos + "<｜User｜><tool_result>sunny</tool_result><｜Assistant｜><think>");
  // Request-level tools without a system message: an empty one is inserted, so <｜System｜>
  // opens the prompt in chat mode too.
  ChatOptions chat = v41(ThinkingMode::chat);
  chat.tools = kTools;
  EXPECT_EQ(rendered({msg("user", "w?")}, chat),
            kBos + kSys + "\n\n" + kToolsSection + "<｜User｜>w?<｜Assistant｜></think>");
  // The same words as V4's section (golden-checked in chat_encoding_test), with V4.1's tags.
  ChatOptions v4;
  v4.thinking.mode = ThinkingMode::chat;
  v4.tools = kTools;
  std::string v4_text = rendered({msg("user", "w?")}, v4);
  for (auto [from, to] : {std::pair<std::string, std::string>{"｜DSML｜tool_calls", "｜DSML｜ calls"},
                          {"｜DSML｜invoke", "｜DSML｜ invoke"},
                          {"｜DSML｜parameter", "｜DSML｜ parameter"}})
    for (size_t at; (at = v4_text.find(from)) != std::string::npos;) v4_text.replace(at, from.size(), to);
  EXPECT_EQ(kBos + kSys + v4_text.substr(kBos.size()), rendered({msg("user", "w?")}, chat));
}

TEST(ChatEncodingV41, ResponseFormatAndDeveloper) {
  ChatMessage sys = msg("system", "S");
  sys.response_format = ojson::parse(R"({"type": "json_object"})");
  EXPECT_EQ(rendered({sys, msg("user", "x")}, v41(ThinkingMode::chat)),
            kBos + kSys +
                "S\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{\"type\": "
                "\"json_object\"}<｜User｜>x<｜Assistant｜></think>");
  EXPECT_EQ(rendered({msg("developer", "D")}, v41(ThinkingMode::chat)), kBos + "<｜User｜>D<｜Assistant｜></think>");
}

// Arguments: a JSON object's members become parameters; V4.1 also decodes double-encoded
// arguments (a JSON string holding the object); anything else is one "arguments" string.
TEST(ChatEncodingV41, ToolCallArguments) {
  const std::string twice = R"("{\"city\": \"Paris\"}")";
  EXPECT_EQ(render_tool_calls({{"", "f", twice}}, EncoderRevision::v41),
            "<｜DSML｜ calls>\n<｜DSML｜ invoke name=\"f\">\n<｜DSML｜ parameter name=\"city\" "
            "string=\"true\">Paris</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n</｜DSML｜ calls>");
  EXPECT_EQ(render_tool_calls({{"", "f", twice}}, EncoderRevision::v4),
            "<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"arguments\" "
            "string=\"true\">" + twice + "</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>");
  EXPECT_EQ(render_tool_calls({{"", "f", "not json"}, {"", "g", "{}"}}, EncoderRevision::v41),
            "<｜DSML｜ calls>\n<｜DSML｜ invoke name=\"f\">\n<｜DSML｜ parameter name=\"arguments\" "
            "string=\"true\">not json</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n<｜DSML｜ invoke name=\"g\">\n\n"
            "</｜DSML｜ invoke>\n</｜DSML｜ calls>");
}

// §11.5: dsv4 runs V4.1's text model only. An image part is refused (never dropped), and so is
// text that holds the image placeholder; V4 keeps its official "[Unsupported TYPE]" rendering.
TEST(ChatEncodingV41, ImagesAreRefused) {
  for (const char* part : {R"({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}})",
                           R"({"type": "image", "source": {}})", R"({"type": "input_image", "image_url": "x"})"}) {
    const ojson j = ojson::parse(std::string(R"([{"role": "user", "content": [{"type": "text", "text": "what?"}, )") +
                                 part + "]}]");
    auto m = messages_from_json(j);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_TRUE((*m)[0].has_image);
    auto r = render_chat(*m, v41());
    ASSERT_FALSE(r.ok()) << part;
    EXPECT_NE(r.status().message().find("message 0: images are not supported"), std::string::npos)
        << r.status().message();
    EXPECT_TRUE(render_chat(*m, ChatOptions{}).ok());
  }
  auto r = render_chat({msg("user", "see <｜deepseek_image｜> here")}, v41());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("image placeholder"), std::string::npos);
  // Other part types are no images: rendered as the encoders do.
  auto audio = messages_from_json(ojson::parse(R"([{"role": "user", "content": [{"type": "input_audio"}]}])"));
  ASSERT_TRUE(audio.ok());
  EXPECT_FALSE((*audio)[0].has_image);
  EXPECT_EQ(rendered(*audio, v41(ThinkingMode::chat)), kBos + "<｜User｜>[Unsupported input_audio]<｜Assistant｜></think>");
}

// ---- the completion parser in the V4.1 dialect ----

ParsedCompletion parse41(const std::string& text, ThinkingMode mode) {
  return CompletionParser::parse(text, mode, EncoderRevision::v41);
}

// A call rendered by the encoder parses back to the same call, in both modes and in any split.
TEST(ChatEncodingV41, DsmlRoundTrip) {
  const std::vector<ToolCall> calls = {{"", "get_weather", R"({"city": "Paris", "days": 3})"},
                                       {"", "search", R"({"q": "a \"quoted\" <b> text", "filters": {"lang": ["fr"]}})"}};
  const std::string block = render_tool_calls(calls, EncoderRevision::v41);
  for (ThinkingMode mode : {ThinkingMode::thinking, ThinkingMode::chat}) {
    const std::string text =
        (mode == ThinkingMode::thinking ? "Let me look.</think>" : "") + std::string("Checking.\n\n") + block + kEos;
    const ParsedCompletion p = parse41(text, mode);
    EXPECT_FALSE(p.malformed) << p.error;
    EXPECT_TRUE(p.finished);
    EXPECT_EQ(p.content, "Checking.");
    EXPECT_EQ(p.reasoning_content, mode == ThinkingMode::thinking ? "Let me look." : "");
    ASSERT_EQ(p.tool_calls.size(), 2u);
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(p.tool_calls[i].name, calls[i].name);
      EXPECT_EQ(p.tool_calls[i].arguments, calls[i].arguments);
    }
    // One byte at a time: the same message.
    CompletionParser streamed(mode, EncoderRevision::v41);
    for (char c : text) streamed.feed(std::string_view(&c, 1));
    const ParsedCompletion s = streamed.finish();
    EXPECT_EQ(s.content, p.content);
    EXPECT_EQ(s.reasoning_content, p.reasoning_content);
    ASSERT_EQ(s.tool_calls.size(), 2u);
    EXPECT_EQ(s.tool_calls[1].arguments, calls[1].arguments);
  }
}

// The V4.1 parser also takes V4's tags (v4.1 §11.3: accept both dialects); a block's inner tags
// follow its opening tag. The V4 parser is unchanged: V4.1's block is no call to it.
TEST(ChatEncodingV41, ParserDialects) {
  const std::vector<ToolCall> calls = {{"", "f", R"({"x": 1})"}};
  const std::string v4_text = "\n\n" + render_tool_calls(calls, EncoderRevision::v4) + kEos;
  const std::string v41_text = "\n\n" + render_tool_calls(calls, EncoderRevision::v41) + kEos;
  for (const std::string& text : {v4_text, v41_text}) {
    const ParsedCompletion p = parse41(text, ThinkingMode::chat);
    EXPECT_FALSE(p.malformed) << p.error;
    ASSERT_EQ(p.tool_calls.size(), 1u);
    EXPECT_EQ(p.tool_calls[0].arguments, R"({"x": 1})");
  }
  const ParsedCompletion v4 = CompletionParser::parse(v41_text, ThinkingMode::chat);
  EXPECT_TRUE(v4.tool_calls.empty());
  EXPECT_TRUE(v4.malformed);  // ｜DSML｜ inside content
  // Mixed tags inside one block are malformed: the raw block comes back as content.
  const std::string mixed = "\n\n<｜DSML｜ calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜ calls>" + kEos;
  const ParsedCompletion m = parse41(mixed, ThinkingMode::chat);
  EXPECT_TRUE(m.malformed);
  EXPECT_TRUE(m.tool_calls.empty());
  EXPECT_NE(m.content.find("<｜DSML｜ calls>"), std::string::npos);
}

}  // namespace
}  // namespace dsv4::text

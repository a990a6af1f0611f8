// Chat rendering against DeepSeek's official encoder outputs (spec §7.2-7.3).
#include "text/chat_encoding.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "text/py_json.h"

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i > 80 ? i - 80 : 0;
  return "first difference at byte " + std::to_string(i) + "\n want: ..." + want.substr(from, 200) + "\n got:  ..." +
         got.substr(from, 200);
}

TEST(ChatEncoding, OfficialGoldenVectors) {
  const std::string dir = test::shared_dir() + "/data/dsv4-tokenizer/encoding-tests/";
  for (int n = 1; n <= 4; ++n) {
    const ojson input = ojson::parse(read_file(dir + "test_input_" + std::to_string(n) + ".json"));
    const std::string want = read_file(dir + "test_output_" + std::to_string(n) + ".txt");
    ChatOptions opt;
    opt.thinking.mode = n == 4 ? ThinkingMode::chat : ThinkingMode::thinking;
    // Case 1 is {"tools", "messages"}: the tools go on the first (system) message.
    const ojson& msgs_json = input.is_object() ? input["messages"] : input;
    auto msgs = messages_from_json(msgs_json);
    ASSERT_TRUE(msgs.ok()) << msgs.status().to_string();
    if (input.is_object() && input.contains("tools")) opt.tools = tools_from_json(input["tools"], "tools").value();
    auto got = render_chat(*msgs, opt);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_TRUE(*got == want) << "golden " << n << ": " << first_difference(want, *got);
  }
}

TEST(ChatEncoding, PublicRenderVectors) {
  const ojson j = ojson::parse(read_file(test::shared_dir() + "/data/dsv4-vectors/chat-vectors-public.json"));
  const auto& cases = j.at("render");
  ASSERT_EQ(cases.size(), 40u);
  for (size_t i = 0; i < cases.size(); ++i) {
    auto msgs = messages_from_json(cases[i]["messages"]);
    ASSERT_TRUE(msgs.ok()) << msgs.status().to_string();
    auto opt = options_from_json(cases[i]["options"]);
    ASSERT_TRUE(opt.ok()) << opt.status().to_string();
    auto got = render_chat(*msgs, *opt);
    ASSERT_TRUE(got.ok()) << "case " << i << ": " << got.status().to_string();
    const std::string want = cases[i]["prompt"];
    EXPECT_TRUE(*got == want) << "render case " << i << ": " << first_difference(want, *got);
  }
}

// The rendered prompt, or the error text (so that a failure shows up in the comparison).
std::string rendered(const std::vector<ChatMessage>& m, const ChatOptions& o) {
  auto r = render_chat(m, o);
  return r.ok() ? r.value() : "ERROR: " + r.status().to_string();
}

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

TEST(ChatEncoding, ModesAndEffort) {
  std::vector<ChatMessage> m{msg("system", "Be brief."), msg("user", "Hi")};
  ChatOptions o;
  o.thinking.mode = ThinkingMode::chat;
  EXPECT_EQ(rendered(m, o), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜></think>");
  o.thinking.mode = ThinkingMode::thinking;
  EXPECT_EQ(rendered(m, o), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>");
  o.thinking.effort = "high";  // preview encoder: no prefix for high
  EXPECT_EQ(rendered(m, o), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>");
  o.thinking.effort = "max";
  auto r = render_chat(m, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rfind("<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum", 0), 0u);
  o.revision = EncoderRevision::v4_flash_0731;
  r = render_chat(m, o);
  EXPECT_EQ(r->rfind("<｜begin▁of▁sentence｜>Reasoning Effort: Beyond maximum", 0), 0u);
  o.thinking.effort = "high";
  r = render_chat(m, o);
  EXPECT_EQ(r->rfind("<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum", 0), 0u);
  o.thinking.effort = "extreme";
  EXPECT_FALSE(render_chat(m, o).ok());
}

TEST(ChatEncoding, TasksPrefixAndResponseFormat) {
  ChatOptions chat;
  chat.thinking.mode = ThinkingMode::chat;
  auto q = msg("user", "Q");
  q.task = "query";
  EXPECT_EQ(rendered({q}, chat), "<｜begin▁of▁sentence｜><｜User｜>Q<｜query｜>");
  auto a = msg("assistant", "A");
  a.task = "title";
  EXPECT_EQ(rendered({msg("user", "Q"), a, msg("assistant", "T")}, chat),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>A<｜end▁of▁sentence｜><｜title｜>T<｜end▁of▁sentence｜>");
  auto act = msg("user", "Q");
  act.task = "action";
  ChatOptions think;
  EXPECT_EQ(rendered({act, msg("assistant", "Search")}, think),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think><｜action｜>Search<｜end▁of▁sentence｜>");
  auto pre = msg("assistant", "```python\n");
  pre.prefix = true;
  EXPECT_EQ(rendered({msg("user", "Write code"), pre}, chat),
            "<｜begin▁of▁sentence｜><｜User｜>Write code<｜Assistant｜></think>```python\n");
  chat.response_format = ojson::parse(R"({"type": "json_object"})");
  EXPECT_EQ(rendered({msg("system", "S"), msg("user", "x")}, chat),
            "<｜begin▁of▁sentence｜>S\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to "
            "reply:\n{\"type\": \"json_object\"}<｜User｜>x<｜Assistant｜></think>");
}

TEST(ChatEncoding, ToolResultsMergeAndSortByCallOrder) {
  ChatMessage asst = msg("assistant", "");
  asst.tool_calls = {{"c1", "f", "{}"}, {"c2", "g", "not json"}};
  ChatMessage t2 = msg("tool", "R2"), t1 = msg("tool", "R1");
  t2.tool_call_id = "c2";
  t1.tool_call_id = "c1";
  ChatOptions o;
  o.drop_thinking = false;
  auto r = render_chat({msg("user", "go"), asst, t2, t1, msg("user", "and?")}, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r,
            "<｜begin▁of▁sentence｜><｜User｜>go<｜Assistant｜><think></think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke "
            "name=\"f\">\n\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"g\">\n<｜DSML｜parameter name=\"arguments\" "
            "string=\"true\">not json</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>"
            "<｜User｜><tool_result>R1</tool_result>\n\n<tool_result>R2</tool_result>\n\nand?<｜Assistant｜><think>");
}

TEST(ChatEncoding, OfficialMergeAndOrderingRules) {
  // An id unknown to the last calling assistant sorts as position 0 (stable), like the official
  // encoder's dict.get(id, 0).
  ChatMessage asst = msg("assistant", "");
  asst.tool_calls = {{"c1", "f", "{}"}, {"c2", "f", "{}"}};
  ChatMessage r2 = msg("tool", "R2"), rx = msg("tool", "RX"), r1 = msg("tool", "R1");
  r2.tool_call_id = "c2";
  rx.tool_call_id = "zz";
  r1.tool_call_id = "c1";
  ChatOptions chat;
  chat.thinking.mode = ThinkingMode::chat;
  const std::string out = rendered({msg("user", "go"), asst, r2, rx, r1}, chat);
  EXPECT_NE(out.find("<｜User｜><tool_result>RX</tool_result>\n\n<tool_result>R1</tool_result>\n\n<tool_result>R2</tool_result>"
                     "<｜Assistant｜></think>"),
            std::string::npos)
      << out;
  // A user message after a task-carrying user turn starts a new turn; the task token is only
  // written when the next message is an assistant (or latest_reminder) or there is none.
  auto q = msg("user", "Q");
  q.task = "query";
  EXPECT_EQ(rendered({q, msg("user", "next")}, chat), "<｜begin▁of▁sentence｜><｜User｜>Q<｜User｜>next<｜Assistant｜></think>");
  // Consecutive plain user messages share one turn.
  EXPECT_EQ(rendered({msg("user", "a"), msg("user", "b")}, chat), "<｜begin▁of▁sentence｜><｜User｜>a\n\nb<｜Assistant｜></think>");
  // Empty tools are absent (Python falsy): they neither render nor disable drop_thinking.
  ChatMessage sys = msg("system", "S");
  sys.tools = tools_from_json(ojson::array(), "tools").value();
  ChatMessage old = msg("assistant", "A1");
  old.reasoning_content = "r1";
  ChatOptions think;
  EXPECT_EQ(rendered({sys, msg("user", "Q1"), old, msg("user", "Q2")}, think),
            "<｜begin▁of▁sentence｜>S<｜User｜>Q1<｜Assistant｜></think>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>");
  // The effort prefix opens the first message even without BOS (add_default_bos_token=False).
  think.add_bos = false;
  think.thinking.effort = "max";
  EXPECT_EQ(rendered({msg("user", "Q")}, think).rfind("Reasoning Effort: Absolute maximum", 0), 0u);
  // Developer messages before the last user message are dropped when thinking is dropped.
  ChatOptions think2;
  EXPECT_EQ(rendered({msg("developer", "D"), msg("user", "Q")}, think2), "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think>");
  think2.drop_thinking = false;
  EXPECT_EQ(rendered({msg("developer", "D"), msg("user", "Q")}, think2),
            "<｜begin▁of▁sentence｜><｜User｜>D<｜User｜>Q<｜Assistant｜><think>");
}

TEST(ChatEncoding, BadInputIsAnError) {
  EXPECT_FALSE(render_chat({}, ChatOptions{}).ok());
  EXPECT_FALSE(render_chat({msg("wizard", "x")}, ChatOptions{}).ok());
  EXPECT_FALSE(render_chat({msg("developer", "")}, ChatOptions{}).ok());
  auto bad_task = msg("user", "x");
  bad_task.task = "nope";
  EXPECT_FALSE(render_chat({bad_task}, ChatOptions{}).ok());
  EXPECT_FALSE(messages_from_json(ojson::parse(R"({"role": "user"})")).ok());
  EXPECT_FALSE(messages_from_json(ojson::parse(R"([{"content": "x"}])")).ok());
  EXPECT_FALSE(messages_from_json(ojson::parse(R"([{"role": "user", "content": 5}])")).ok());
  EXPECT_FALSE(messages_from_json(ojson::parse(R"([{"role": "assistant", "tool_calls": [{"id": "x"}]}])")).ok());
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"thinking_mode": "deep"})")).ok());
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"bogus": 1})")).ok());
}

TEST(ChatEncoding, ContentPartsAndUnsupportedTypes) {
  auto m = messages_from_json(ojson::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]}])"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].content, "a\n\n[Unsupported image_url]\n\nb");
}

TEST(PyJson, MatchesPythonJsonDumps) {
  EXPECT_EQ(py_json_dumps(ojson::parse(R"({"b": [1, 2.5, true, null], "a": "x\"\n\u0001é"})")),
            "{\"b\": [1, 2.5, true, null], \"a\": \"x\\\"\\n\\u0001é\"}");
  EXPECT_EQ(py_float_repr(1.0), "1.0");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1e-5), "1e-05");
  EXPECT_EQ(py_float_repr(0.0001), "0.0001");
  EXPECT_EQ(py_float_repr(123456789.125), "123456789.125");
  EXPECT_EQ(py_float_repr(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(py_float_repr(1.5e300), "1.5e+300");
}

}  // namespace
}  // namespace dsv4::text

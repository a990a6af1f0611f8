// Completion parsing against the official parser's outputs (spec §7.3), streaming equivalence
// and robustness.
#include "text/completion_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "test_paths.h"
#include "text/py_json.h"
#include "text/utf8.h"

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

ojson load_vectors() {
  std::ifstream in(test::shared_dir() + "/data/dsv4-vectors/chat-vectors-public.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ojson::parse(ss.str());
}

ThinkingMode mode_of(const ojson& c) {
  return c.at("thinking_mode") == "thinking" ? ThinkingMode::thinking : ThinkingMode::chat;
}

// The fields the official parser returns.
ojson official_view(const ParsedCompletion& p) {
  ojson j = completion_to_json(p);
  ojson v = ojson::object();
  for (const char* k : {"role", "content", "reasoning_content", "tool_calls"}) v[k] = j[k];
  return v;
}

struct Streamed {
  ParsedCompletion result;
  std::string reasoning, content;
  std::vector<ToolCall> calls;
};

// Feeds text in pieces of the given size and rebuilds the message from the events alone.
Streamed stream(const std::string& text, ThinkingMode mode, size_t chunk) {
  CompletionParser p(mode);
  Streamed s;
  // Deltas of valid input must be valid UTF-8 even when a piece ends inside a character.
  const bool valid_input = utf8_is_valid(text);
  auto apply = [&](const std::vector<CompletionEvent>& evs) {
    for (const auto& e : evs) {
      switch (e.kind) {
        case CompletionEventKind::reasoning_delta:
          EXPECT_TRUE(!valid_input || utf8_is_valid(e.text));
          s.reasoning += e.text;
          break;
        case CompletionEventKind::content_delta:
          EXPECT_TRUE(!valid_input || utf8_is_valid(e.text));
          s.content += e.text;
          break;
        case CompletionEventKind::tool_call_started:
          EXPECT_EQ(e.tool_index, static_cast<int>(s.calls.size()));
          s.calls.push_back({"", e.name, ""});
          break;
        case CompletionEventKind::tool_call_arguments: s.calls.back().arguments += e.text; break;
        case CompletionEventKind::tool_call_finished: break;
      }
    }
  };
  for (size_t i = 0; i < text.size(); i += chunk) apply(p.feed(std::string_view(text).substr(i, chunk)));
  std::vector<CompletionEvent> tail;
  s.result = p.finish(&tail);
  apply(tail);
  return s;
}

TEST(CompletionParser, PublicParseVectors) {
  const ojson j = load_vectors();
  const auto& cases = j.at("parse");
  ASSERT_EQ(cases.size(), 20u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = cases[i]["completion"];
    const auto parsed = CompletionParser::parse(text, mode_of(cases[i]));
    EXPECT_EQ(official_view(parsed), cases[i]["parsed"]) << "parse case " << i;
    EXPECT_FALSE(parsed.malformed) << parsed.error;
    EXPECT_TRUE(parsed.finished);
  }
}

TEST(CompletionParser, ByteAtATimeGivesTheSameResult) {
  const ojson j = load_vectors();
  for (const auto& c : j.at("parse")) {
    const std::string text = c["completion"];
    const auto whole = CompletionParser::parse(text, mode_of(c));
    for (size_t chunk : {1, 2, 3, 7}) {
      const Streamed s = stream(text, mode_of(c), chunk);
      EXPECT_EQ(official_view(s.result), official_view(whole)) << "chunk " << chunk;
      EXPECT_EQ(s.reasoning, whole.reasoning_content);
      EXPECT_EQ(s.content, whole.content);
      ASSERT_EQ(s.calls.size(), whole.tool_calls.size());
      for (size_t k = 0; k < s.calls.size(); ++k) {
        EXPECT_EQ(s.calls[k].name, whole.tool_calls[k].name);
        EXPECT_EQ(s.calls[k].arguments, whole.tool_calls[k].arguments);
      }
    }
  }
}

TEST(CompletionParser, NonStringParametersAreParsedAsJson) {
  const std::string text =
      "ok</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
      "<｜DSML｜parameter name=\"n\" string=\"false\">[1,2, {\"a\":1.5}]</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"s\" string=\"true\">say \"hi\"\n</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"bad\" string=\"false\">not json</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"g\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  const auto p = CompletionParser::parse(text, ThinkingMode::thinking);
  EXPECT_FALSE(p.malformed) << p.error;
  ASSERT_EQ(p.tool_calls.size(), 2u);
  // string="false" JSON is kept as written (official behaviour); non-JSON degrades to a string.
  EXPECT_EQ(p.tool_calls[0].arguments, R"({"n": [1,2, {"a":1.5}], "s": "say \"hi\"\n", "bad": "not json"})");
  EXPECT_EQ(p.tool_calls[1].name, "g");
  EXPECT_EQ(p.tool_calls[1].arguments, "{}");
}

TEST(CompletionParser, MalformedDsmlDegradesToContent) {
  // Broken parameter header: the block text becomes content, the flag is set.
  const std::string text =
      "Hi\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter nme=\"x\">1</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  const auto p = CompletionParser::parse(text, ThinkingMode::chat);
  EXPECT_TRUE(p.malformed);
  EXPECT_TRUE(p.tool_calls.empty());
  EXPECT_EQ(p.content, text.substr(0, text.size() - std::string("<｜end▁of▁sentence｜>").size()));
  EXPECT_TRUE(p.finished);
  for (size_t chunk : {1, 5}) {
    const Streamed s = stream(text, ThinkingMode::chat, chunk);
    EXPECT_EQ(s.result.content, p.content);
    EXPECT_EQ(s.content, p.content);
    EXPECT_TRUE(s.result.malformed);
  }
}

TEST(CompletionParser, UnfinishedBlockKeepsCompletedCallsAndFlags) {
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"g\">\n<｜DSML｜par";
  const auto p = CompletionParser::parse(text, ThinkingMode::chat);
  EXPECT_TRUE(p.malformed);
  EXPECT_FALSE(p.finished);
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.content, "\n<｜DSML｜invoke name=\"g\">\n<｜DSML｜par");
  EXPECT_EQ(official_view(stream(text, ThinkingMode::chat, 1).result), official_view(p));
}

TEST(CompletionParser, TextAfterBlockAndMarkersInContentAreFlagged) {
  auto p = CompletionParser::parse(
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>oops<｜end▁of▁sentence｜>",
      ThinkingMode::chat);
  EXPECT_TRUE(p.malformed);
  EXPECT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.content, "oops");
  p = CompletionParser::parse("a<think>b<｜end▁of▁sentence｜>", ThinkingMode::chat);
  EXPECT_TRUE(p.malformed);
  EXPECT_EQ(p.content, "a<think>b");
  p = CompletionParser::parse("reasoning cut off", ThinkingMode::thinking);
  EXPECT_FALSE(p.malformed);
  EXPECT_FALSE(p.finished);
  EXPECT_EQ(p.reasoning_content, "reasoning cut off");
  p = CompletionParser::parse("x<｜end▁of▁sentence｜>ignored", ThinkingMode::chat);
  EXPECT_EQ(p.content, "x");
  EXPECT_TRUE(p.malformed);
  p = CompletionParser::parse(
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>",
      ThinkingMode::chat);
  EXPECT_TRUE(p.malformed);
  EXPECT_TRUE(p.tool_calls.empty());
}

TEST(CompletionParser, LongParameterValueStreamsInLinearTime) {
  std::string value;
  while (value.size() < 2'000'000) value += "int f(int x) { return x * 2; }\n";
  const std::string text = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"write\">\n<｜DSML｜parameter name=\"code\" string=\"true\">" +
                           value + "</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  CompletionParser p(ThinkingMode::chat);
  for (size_t i = 0; i < text.size(); i += 4) p.feed(std::string_view(text).substr(i, 4));  // ~500k feeds
  const auto r = p.finish();
  ASSERT_FALSE(r.malformed) << r.error;
  ASSERT_EQ(r.tool_calls.size(), 1u);
  std::string want = "{\"code\": ";
  py_json_append_string(want, value);
  EXPECT_TRUE(r.tool_calls[0].arguments == want + "}");
}

TEST(CompletionParser, OverlongHeaderIsMalformedNotBuffered) {
  const std::string text = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"" + std::string(5000, 'a') + "\">\n";
  const auto whole = CompletionParser::parse(text, ThinkingMode::chat);
  EXPECT_TRUE(whole.malformed);
  EXPECT_EQ(official_view(stream(text, ThinkingMode::chat, 1).result), official_view(whole));
}

TEST(CompletionParserFuzz, RandomInputNeverCrashesAndStreamingAgrees) {
  std::mt19937 rng(99);
  const std::vector<std::string> atoms{"</think>", "<｜end▁of▁sentence｜>", "\n\n<｜DSML｜tool_calls>", "\n",
                                       "<｜DSML｜invoke name=\"f\">", "</｜DSML｜invoke>", "</｜DSML｜tool_calls>",
                                       "<｜DSML｜parameter name=\"k\" string=\"false\">", "</｜DSML｜parameter>",
                                       "string=\"true\">", "\">", "{\"a\": 1}", "é", "東", "x", "<", "｜DSML｜"};
  for (int iter = 0; iter < 1500; ++iter) {
    std::string s;
    const int len = static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) {
      if (rng() % 4 == 0) {
        s.push_back(static_cast<char>(rng() & 0xFF));
      } else {
        s += atoms[rng() % atoms.size()];
      }
    }
    const ThinkingMode mode = (iter & 1) ? ThinkingMode::chat : ThinkingMode::thinking;
    const auto whole = CompletionParser::parse(s, mode);
    const Streamed one = stream(s, mode, 1);
    // Deltas are held back only to avoid cutting a character; invalid bytes in the input are
    // compared on the final message, which keeps them.
    ASSERT_EQ(one.result.content, whole.content) << "iteration " << iter;
    ASSERT_EQ(one.result.reasoning_content, whole.reasoning_content) << "iteration " << iter;
    ASSERT_EQ(one.result.tool_calls.size(), whole.tool_calls.size()) << "iteration " << iter;
    ASSERT_EQ(one.result.malformed, whole.malformed) << "iteration " << iter;
    (void)completion_to_json(whole).dump();
  }
}

}  // namespace
}  // namespace dsv4::text

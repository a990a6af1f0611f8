#include "text/output_stream.h"

#include <gtest/gtest.h>

namespace dsv4::text {
namespace {

// One byte per token id, so that a test spells its output.
class ByteDecoder : public TokenDecoder {
 public:
  std::string push(int32_t id) override { return std::string(1, char(id)); }
  std::string finish() override { return {}; }
};

// Pushes every byte of `text` as a token; returns how many were taken.
int push_all(OutputStream& out, std::string_view text, OutputStream::Piece& piece) {
  int taken = 0;
  for (char c : text) taken += out.push(int32_t(c), piece) ? 1 : 0;
  return taken;
}

std::string joined(const std::vector<CompletionEvent>& events, CompletionEventKind kind) {
  std::string s;
  for (const auto& e : events)
    if (e.kind == kind) s += e.text;
  return s;
}

TEST(OutputStream, RawTextStopsAtTheTokenThatCompletesAStopString) {
  OutputStream out(std::make_unique<ByteDecoder>(), nullptr, {"END"});
  OutputStream::Piece piece;
  // "xEN" is held back as a possible start of the stop; "D" completes it; "yz" came after it.
  EXPECT_EQ(push_all(out, "xENDyz", piece), 4);
  EXPECT_EQ(piece.text, "x");
  EXPECT_TRUE(piece.events.empty());
  EXPECT_TRUE(out.stopped());
  EXPECT_EQ(out.stop_sequence(), "END");
  EXPECT_EQ(out.tokens(), 4);
  OutputStream::Piece tail;
  out.finish(tail);
  EXPECT_EQ(tail.text, "");
  EXPECT_EQ(out.text(), "x");
}

TEST(OutputStream, FinishReleasesHeldBackText) {
  OutputStream out(std::make_unique<ByteDecoder>(), nullptr, {"END"});
  OutputStream::Piece piece;
  push_all(out, "abEN", piece);
  EXPECT_EQ(piece.text, "ab");
  OutputStream::Piece tail;
  out.finish(tail);
  EXPECT_EQ(tail.text, "EN");
  EXPECT_FALSE(out.stopped());
  EXPECT_EQ(out.text(), "abEN");
}

TEST(OutputStream, ParserSplitsReasoningContentAndToolCalls) {
  OutputStream out(std::make_unique<ByteDecoder>(), completion_output_parser(ThinkingMode::thinking, EncoderRevision::v4), {});
  OutputStream::Piece piece;
  push_all(out, "why</think>Checking.", piece);
  push_all(out,
           "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get\">\n<｜DSML｜parameter name=\"city\" "
           "string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
           piece);
  out.finish(piece);
  EXPECT_EQ(joined(piece.events, CompletionEventKind::reasoning_delta), "why");
  EXPECT_EQ(joined(piece.events, CompletionEventKind::content_delta), "Checking.");
  EXPECT_EQ(joined(piece.events, CompletionEventKind::tool_call_arguments), R"({"city": "Paris"})");
  EXPECT_TRUE(out.saw_tool_calls());
}

// A stop string inside the answer: the parser sees only the text before it.
TEST(OutputStream, TheParserNeverSeesTextPastAStop) {
  OutputStream out(std::make_unique<ByteDecoder>(), completion_output_parser(ThinkingMode::chat, EncoderRevision::v4), {"\n\n"});
  OutputStream::Piece piece;
  push_all(out, "one\n\n<｜DSML｜tool_calls>", piece);
  out.finish(piece);
  EXPECT_EQ(joined(piece.events, CompletionEventKind::content_delta), "one");
  EXPECT_FALSE(out.saw_tool_calls());
  EXPECT_EQ(out.tokens(), 5);
}

}  // namespace
}  // namespace dsv4::text

// UTF-8 helpers used by the tokenizer, the stream decoder and the completion parser.
#include "text/utf8.h"

#include <gtest/gtest.h>

namespace dsv4::text {
namespace {

TEST(Utf8, SequenceLengthFollowsRfc3629) {
  EXPECT_EQ(utf8_sequence_length("a", 0), 1u);
  EXPECT_EQ(utf8_sequence_length("é", 0), 2u);
  EXPECT_EQ(utf8_sequence_length("東", 0), 3u);
  EXPECT_EQ(utf8_sequence_length("😀", 0), 4u);
  EXPECT_EQ(utf8_sequence_length("\xC0\x80", 0), 0u);          // overlong
  EXPECT_EQ(utf8_sequence_length("\xE0\x80\x80", 0), 0u);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xED\xA0\x80", 0), 0u);      // surrogate
  EXPECT_EQ(utf8_sequence_length("\xF4\x90\x80\x80", 0), 0u);  // > U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xE6\x9D", 0), 0u);          // cut off
  EXPECT_EQ(utf8_sequence_length("\x80", 0), 0u);
}

TEST(Utf8, IncompleteTailOnlyCountsValidPrefixes) {
  EXPECT_EQ(utf8_incomplete_tail("ab"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE6"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE6\x9D"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE6\x9D\xB1"), 0u);  // complete
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xE0"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("\xE0\x80"), 0u);  // can never become valid
  EXPECT_EQ(utf8_incomplete_tail("\xED\xA0"), 0u);  // surrogate prefix
  EXPECT_EQ(utf8_incomplete_tail("\xF4\x8F"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("\xF4\x90"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\x80\x80"), 0u);
}

TEST(Utf8, SanitizeReplacesInvalidBytes) {
  EXPECT_EQ(utf8_sanitize("a\xFF" "b\xE6"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_EQ(utf8_sanitize("Zürich"), "Zürich");
}

}  // namespace
}  // namespace dsv4::text

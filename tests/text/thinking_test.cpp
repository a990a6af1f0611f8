// The one thinking type: its defaults (DeepSeek-V4 thinks by default, PROMPT-FORMAT.md §4) and
// the mode's names; the effort levels are the revision's (encoder_revision_test).
#include "text/thinking.h"

#include <gtest/gtest.h>

namespace dsv4::text {
namespace {

TEST(Thinking, DefaultsAndModeNames) {
  const Thinking t;
  EXPECT_TRUE(t.on());
  EXPECT_EQ(t.effort, "");  // the revision's default level
  EXPECT_EQ(t.budget, 0);
  EXPECT_EQ(thinking_mode_named("chat").value(), ThinkingMode::chat);
  EXPECT_EQ(thinking_mode_named("thinking").value(), ThinkingMode::thinking);
  for (const char* bad : {"", "think", "Thinking"})
    EXPECT_EQ(thinking_mode_named(bad).status().message(), "thinking_mode must be \"chat\" or \"thinking\"") << bad;
  EXPECT_TRUE(check_effort(EncoderRevision::v4, "").ok());
  EXPECT_TRUE(check_effort(EncoderRevision::v41, "80").ok());
  EXPECT_FALSE(check_effort(EncoderRevision::v4, "80").ok());
}

}  // namespace
}  // namespace dsv4::text

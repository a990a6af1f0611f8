#include "text/stop_strings.h"

#include <gtest/gtest.h>

namespace dsv4::text {
namespace {

TEST(StopMatcher, HoldsBackAPossibleStartAndStopsAtTheMatch) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.feed("hello E"), "hello ");
  EXPECT_EQ(m.feed("N"), "");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("Dtail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "END");
  EXPECT_EQ(m.feed("more"), "");
}

TEST(StopMatcher, ReleasesHeldTextWhenItCannotMatch) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.feed("abE"), "ab");
  EXPECT_EQ(m.feed("x"), "Ex");
  EXPECT_EQ(m.feed("EN"), "");
  EXPECT_EQ(m.flush(), "EN");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(m.feed("hello world"), "hel");
  EXPECT_EQ(m.matched(), "lo w");
}

TEST(StopMatcher, MatchInsideOneChunk) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.feed("a\n\nb"), "a");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
}  // namespace dsv4::text

#include "runtime/prefix_cache.h"

#include <gtest/gtest.h>

#include "runtime/fake_engine.h"

namespace dsv4::runtime {
namespace {

using Tokens = std::vector<int32_t>;

// A snapshot after `tokens` (FakeSequence: 4 bytes per token).
std::shared_ptr<const Sequence> snap(const Tokens& tokens) {
  auto s = std::make_shared<test::FakeSequence>();
  s->tokens = tokens;
  return s;
}

Tokens head(const Tokens& t, size_t n) { return Tokens(t.begin(), t.begin() + ptrdiff_t(n)); }

TEST(PrefixCache, FindsTheDeepestSnapshotThatPrefixesThePrompt) {
  PrefixCache c(1 << 20);
  const Tokens a = {1, 2, 3, 4, 5, 6, 7, 8};
  c.insert(head(a, 3), snap(head(a, 3)));
  c.insert(head(a, 6), snap(head(a, 6)));
  c.insert(a, snap(a));
  // A prompt that diverges at position 7 resumes from the snapshot at 6.
  Tokens p = head(a, 7);
  p.push_back(99);
  PrefixCache::Hit h = c.find(p, int64_t(p.size()) - 1);
  ASSERT_TRUE(h.seq);
  EXPECT_EQ(h.depth, 6);
  EXPECT_EQ(h.seq->position(), 6);
  // The depth limit keeps at least one token to feed.
  EXPECT_EQ(c.find(a, int64_t(a.size()) - 1).depth, 6);
  EXPECT_EQ(c.find(a, 8).depth, 8);
  // Diverging inside the first edge: nothing.
  EXPECT_FALSE(c.find(Tokens{1, 2, 9, 9}, 3).seq);
  EXPECT_FALSE(c.find(Tokens{7}, 0).seq);
  EXPECT_TRUE(c.contains(head(a, 6)));
  EXPECT_FALSE(c.contains(head(a, 5)));
  EXPECT_FALSE(c.contains(Tokens{}));
  EXPECT_EQ(c.snapshots(), 3u);
  EXPECT_EQ(c.bytes(), (3 + 6 + 8) * sizeof(int32_t));
}

TEST(PrefixCache, SplitsEdgesWhereBranchesDiverge) {
  PrefixCache c(1 << 20);
  const Tokens a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 7, 8};
  c.insert(a, snap(a));
  c.insert(b, snap(b));
  c.insert(head(a, 3), snap(head(a, 3)));  // lands on the split node
  EXPECT_EQ(c.find(Tokens{1, 2, 3, 7, 8, 9}, 5).depth, 5);
  EXPECT_EQ(c.find(Tokens{1, 2, 3, 4, 5, 6, 0}, 6).depth, 6);
  EXPECT_EQ(c.find(Tokens{1, 2, 3, 4, 0}, 4).depth, 3);
  EXPECT_EQ(c.nodes(), 3u);
  // Inserting again keeps the snapshot held.
  auto first = c.find(a, 6).seq;
  c.insert(a, snap(a));
  EXPECT_EQ(c.find(a, 6).seq, first);
  EXPECT_EQ(c.snapshots(), 3u);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedByBytesAndMergesNodes) {
  PrefixCache c(20 * sizeof(int32_t));
  const Tokens a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 7, 8, 9}, d = {1, 2, 3, 7, 8, 0, 0, 0};
  c.insert(a, snap(a));
  c.insert(b, snap(b));
  EXPECT_EQ(c.find(a, 6).depth, 6);   // a is now the most recently used
  c.insert(d, snap(d));                 // 6 + 6 + 8 = 20 tokens: all fit
  EXPECT_EQ(c.snapshots(), 3u);
  const Tokens e = {5, 5, 5};
  c.insert(e, snap(e));                 // 23 > 20: b, the least recently used, goes
  EXPECT_EQ(c.snapshots(), 3u);
  EXPECT_FALSE(c.contains(b));
  EXPECT_TRUE(c.contains(a) && c.contains(d) && c.contains(e));
  EXPECT_EQ(c.bytes(), (6 + 8 + 3) * sizeof(int32_t));
  // The nodes left: the split at {1,2,3}, a, d and e; b's leaf was removed and {1,2,3,7,8}
  // merged into d.
  EXPECT_EQ(c.nodes(), 4u);
  // A snapshot larger than the whole cap is never kept, and evicts nothing.
  const Tokens big(21, 3);
  c.insert(big, snap(big));
  EXPECT_FALSE(c.contains(big));
  EXPECT_EQ(c.snapshots(), 3u);
  // Evicting everything leaves an empty tree.
  const Tokens huge(20, 4);
  c.insert(huge, snap(huge));
  EXPECT_EQ(c.snapshots(), 1u);
  EXPECT_EQ(c.nodes(), 1u);
}

}  // namespace
}  // namespace dsv4::runtime

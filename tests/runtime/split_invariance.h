// Shared by the engine tests: deterministic token streams, and the check that logits do not
// depend on how a prompt is split (spec §5.13).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace dsv4::runtime {

// n pseudo-random token ids below vocab, BOS (0) first.
inline std::vector<int32_t> test_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t s = 12345;
  for (auto& v : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = int32_t((s >> 33) % uint64_t(vocab));
  }
  t[0] = 0;
  return t;
}

// Feeds `tokens` token by token, in chunks of 7 (odd: crosses every window boundary at a
// different phase) and in one shot; our kernels keep a fixed per-row summation order, so the
// logits after each chunk must equal the token-by-token ones exactly. Returns the token-by-token
// logits ([n, vocab]) for further checks.
inline std::vector<float> expect_split_invariance(Engine& engine, const std::vector<int32_t>& tokens) {
  const int64_t V = engine.config().vocab_size, n = int64_t(tokens.size());
  std::vector<float> per_token(static_cast<size_t>(n * V));
  auto seq = engine.new_sequence();
  for (int64_t i = 0; i < n; ++i) {
    Status s = engine.step(*seq, std::span(&tokens[size_t(i)], 1), &per_token[size_t(i * V)]);
    EXPECT_TRUE(s.ok()) << "position " << i << ": " << s.to_string();
    if (!s.ok()) return per_token;
  }
  auto chunked = engine.new_sequence();
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t s = 0; s < n; s += 7) {
    const int64_t len = std::min<int64_t>(7, n - s);
    EXPECT_TRUE(engine.step(*chunked, std::span(&tokens[size_t(s)], size_t(len)), logits.data()).ok());
    const int64_t last = s + len - 1;
    EXPECT_EQ(0, std::memcmp(logits.data(), &per_token[size_t(last * V)], size_t(V) * 4)) << "position " << last;
  }
  auto whole = engine.new_sequence();
  EXPECT_TRUE(engine.step(*whole, std::span(tokens.data(), tokens.size()), logits.data()).ok());
  EXPECT_EQ(0, std::memcmp(logits.data(), &per_token[size_t((n - 1) * V)], size_t(V) * 4));
  EXPECT_EQ(whole->position(), n);
  return per_token;
}

inline void expect_split_invariance(const std::string& dir, int64_t n) {
  auto e = Engine::load(dir, {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  expect_split_invariance(**e, test_tokens(n, (*e)->config().vocab_size));
}

}  // namespace dsv4::runtime

#include "text/message_starts.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_paths.h"
#include "text/chat_encoding.h"
#include "text/chat_tokens.h"

namespace dsv4::text {
namespace {

Tokenizer vendored() {
  auto r = Tokenizer::from_file(test::vendored_tokenizer_dir() + "/tokenizer.json");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

std::vector<int32_t> encode(const Tokenizer& tok, const nlohmann::ordered_json& messages) {
  auto m = messages_from_json(messages);
  EXPECT_TRUE(m.ok());
  auto text = render_chat(*m, ChatOptions{});
  EXPECT_TRUE(text.ok()) << text.status().to_string();
  return tok.encode(*text);
}

TEST(MessageStarts, AreTheRoleTokensOfTheRenderedChat) {
  const Tokenizer tok = vendored();
  const MessageStarts starts(tok);
  const auto ids = encode(tok, nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello.", "reasoning_content": "greet"},
    {"role": "user", "content": "Bye"}])"));
  const std::vector<int64_t> s = starts.find(ids);
  // User, Assistant (the transition after the first user turn), User, Assistant.
  ASSERT_EQ(s.size(), 4u);
  const int32_t user = *tok.token_id(chat::kUser), assistant = *tok.token_id(chat::kAssistant);
  EXPECT_EQ(ids[size_t(s[0])], user);
  EXPECT_EQ(ids[size_t(s[1])], assistant);
  EXPECT_EQ(ids[size_t(s[2])], user);
  EXPECT_EQ(ids[size_t(s[3])], assistant);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
}

// The agent pattern: the next request repeats the conversation with the last answer appended
// (its reasoning dropped), so it diverges from the previous prompt + output inside the
// assistant turn; every token up to the previous prompt's last message start is shared.
TEST(MessageStarts, NextTurnSharesThePromptUpToItsLastMessageStart) {
  const Tokenizer tok = vendored();
  const MessageStarts starts(tok);
  const auto first = encode(tok, nlohmann::ordered_json::parse(R"([
    {"role": "user", "content": "List three primes."}])"));
  const auto next = encode(tok, nlohmann::ordered_json::parse(R"([
    {"role": "user", "content": "List three primes."},
    {"role": "assistant", "content": "2, 3, 5.", "reasoning_content": "small ones"},
    {"role": "user", "content": "Now three more."}])"));
  const int64_t last = starts.find(first).back();
  ASSERT_LT(last, int64_t(next.size()));
  EXPECT_TRUE(std::equal(first.begin(), first.begin() + last, next.begin()));
  EXPECT_FALSE(std::equal(first.begin(), first.end(), next.begin())) << "the prompts no longer diverge";
}

}  // namespace
}  // namespace dsv4::text

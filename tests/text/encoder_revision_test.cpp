// The encoder revision of a checkpoint and the reasoning-effort prefixes of each revision, byte
// for byte against prompt-constants.json (addendum §A6.1-A6.2, §A8 item 10).
#include "text/encoder_revision.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "test_paths.h"
#include "text/chat_encoding.h"
#include "text/chat_tokens.h"

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ojson effort_goldens() {
  std::ifstream in(test::shared_dir() + "/data/dsv4-tokenizer/prompt-constants.json", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ojson::parse(ss.str()).at("reasoning_effort_prefixes");
}

// prompt-constants.json's section and key for each revision and level ("" = no effort given).
struct Golden {
  EncoderRevision revision;
  const char* effort;
  const char* section;
  const char* key;
};
constexpr const char* kPreviewSection = "DeepSeek-V4-Flash / V4-Pro (preview, April 2026) encoder";
constexpr const char* k0731Section = "DeepSeek-V4-Flash-0731 encoder (later revision)";
constexpr Golden kGoldens[] = {
    {EncoderRevision::v4, "", kPreviewSection, "none/default"},
    {EncoderRevision::v4, "high", kPreviewSection, "high"},
    {EncoderRevision::v4, "max", kPreviewSection, "max"},
    {EncoderRevision::v4_flash_0731, "", k0731Section, "low (default)"},
    {EncoderRevision::v4_flash_0731, "low", k0731Section, "low (default)"},
    {EncoderRevision::v4_flash_0731, "high", k0731Section, "high"},
    {EncoderRevision::v4_flash_0731, "max", k0731Section, "max"},
};

io::ModelConfig config_of(io::Architecture architecture, io::Revision revision) {
  io::ModelConfig c;
  c.architecture = architecture;
  c.revision = revision;
  return c;
}

TEST(EncoderRevision, FollowsTheCheckpointsRelease) {
  EXPECT_EQ(encoder_revision_for(config_of(io::Architecture::v4, io::Revision::preview)), EncoderRevision::v4);
  // Flash-0731 and Pro-0813 (both DSpark checkpoints) share the 0731 encoder (addendum §A6.5, §A7).
  EXPECT_EQ(encoder_revision_for(config_of(io::Architecture::v4, io::Revision::dspark)),
            EncoderRevision::v4_flash_0731);
  // A V4.1 config has dspark_* keys too: the architecture decides first (v4.1 §11).
  EXPECT_EQ(encoder_revision_for(config_of(io::Architecture::v41, io::Revision::dspark)), EncoderRevision::v41);
  EXPECT_EQ(encoder_revision_name(EncoderRevision::v4), "v4");
  EXPECT_EQ(encoder_revision_name(EncoderRevision::v4_flash_0731), "v4-flash-0731");
  EXPECT_EQ(effort_level_names(EncoderRevision::v4), "high, max");
  EXPECT_EQ(effort_level_names(EncoderRevision::v4_flash_0731), "low, high, max");
}

// Thinking mode: BOS, the level's prefix, then the first message. Chat mode: never a prefix.
TEST(EncoderRevision, PromptPrefixesMatchTheGoldens) {
  const ojson goldens = effort_goldens();
  const std::vector<ChatMessage> messages = {msg("system", "Be brief."), msg("user", "Hi")};
  const std::string bos(chat::kBos);
  for (const Golden& g : kGoldens) {
    const std::string prefix = goldens.at(g.section).at(g.key).get<std::string>();
    auto own = effort_prefix(g.revision, g.effort);
    ASSERT_TRUE(own.ok()) << own.status().to_string();
    EXPECT_EQ(*own, prefix) << g.section << " / " << g.key;
    ChatOptions o;
    o.revision = g.revision;
    o.thinking.effort = g.effort;
    auto thinking = render_chat(messages, o);
    ASSERT_TRUE(thinking.ok()) << thinking.status().to_string();
    EXPECT_EQ(*thinking, bos + prefix + "Be brief.<｜User｜>Hi<｜Assistant｜><think>") << g.section << " / " << g.key;
    o.thinking.mode = ThinkingMode::chat;
    auto chat = render_chat(messages, o);
    ASSERT_TRUE(chat.ok()) << chat.status().to_string();
    EXPECT_EQ(*chat, bos + "Be brief.<｜User｜>Hi<｜Assistant｜></think>") << g.section << " / " << g.key;
  }
  // Every level of each revision has a golden, so the table above covers them all.
  for (EncoderRevision r : {EncoderRevision::v4, EncoderRevision::v4_flash_0731}) {
    for (const EffortLevel& l : effort_levels(r)) {
      bool covered = false;
      for (const Golden& g : kGoldens) covered |= g.revision == r && g.effort == l.name;
      EXPECT_TRUE(covered) << encoder_revision_name(r) << " " << l.name;
    }
  }
  // The 0731 refresh moved the texts down one level (addendum §A6.1).
  EXPECT_EQ(goldens.at(k0731Section).at("high"), goldens.at(kPreviewSection).at("max"));
}

TEST(EncoderRevision, LevelsARevisionLacksAreErrorsInBothModes) {
  struct Bad { EncoderRevision revision; const char* effort; const char* message; };
  for (const Bad& b : {Bad{EncoderRevision::v4, "low",
                           "reasoning effort 'low' is not a level of the v4 chat encoder (its levels: high, max)"},
                       Bad{EncoderRevision::v4_flash_0731, "medium",
                           "reasoning effort 'medium' is not a level of the v4-flash-0731 chat encoder (its levels: "
                           "low, high, max)"},
                       Bad{EncoderRevision::v4_flash_0731, "none",
                           "reasoning effort 'none' is not a level of the v4-flash-0731 chat encoder (its levels: "
                           "low, high, max)"}}) {
    EXPECT_EQ(effort_prefix(b.revision, b.effort).status().message(), b.message);
    EXPECT_EQ(check_effort(b.revision, b.effort).message(), b.message);  // the CLI's early check
    for (ThinkingMode mode : {ThinkingMode::thinking, ThinkingMode::chat}) {
      ChatOptions o;
      o.revision = b.revision;
      o.thinking.mode = mode;
      o.thinking.effort = b.effort;
      auto r = render_chat({msg("user", "Hi")}, o);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().message(), b.message);
    }
  }
}

// DeepSeek's API mapping: every API name lands on a level the revision has (so rendering never
// fails for an accepted name), the revision's own level names map to themselves, and names
// outside the table are refused.
TEST(EncoderRevision, ApiEffortNamesMapOntoTheRevisionsLevels) {
  for (EncoderRevision r : {EncoderRevision::v4, EncoderRevision::v4_flash_0731}) {
    for (const char* name : {"minimal", "low", "medium", "high", "xhigh", "max"}) {
      auto level = api_effort_level(r, name);
      ASSERT_TRUE(level.ok()) << name;
      EXPECT_TRUE(effort_prefix(r, *level).ok()) << name << " -> " << *level;
    }
    for (const EffortLevel& l : effort_levels(r)) EXPECT_EQ(api_effort_level(r, l.name).value(), l.name);
    EXPECT_FALSE(api_effort_level(r, "80").ok());  // numbers are V4.1's only
    for (const char* bad : {"", "none", "Medium", "ultra"}) EXPECT_FALSE(api_effort_level(r, bad).ok()) << bad;
  }
  EXPECT_EQ(api_effort_level(EncoderRevision::v4, "low").value(), "high");
  EXPECT_EQ(api_effort_level(EncoderRevision::v4_flash_0731, "minimal").value(), "low");
  EXPECT_EQ(api_effort_level(EncoderRevision::v4_flash_0731, "medium").value(), "high");
}

// `render -m DIR` passes the checkpoint's revision as the default; an explicit one still wins.
TEST(EncoderRevision, OptionsDefaultToTheGivenRevision) {
  const auto low = ojson::parse(R"({"reasoning_effort": "low"})");
  auto o = options_from_json(low, EncoderRevision::v4_flash_0731);
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  EXPECT_EQ(o->revision, EncoderRevision::v4_flash_0731);
  EXPECT_FALSE(options_from_json(low).ok());  // the preview has no "low"
  auto explicit_v4 = options_from_json(ojson::parse(R"({"revision": "v4"})"), EncoderRevision::v4_flash_0731);
  ASSERT_TRUE(explicit_v4.ok());
  EXPECT_EQ(explicit_v4->revision, EncoderRevision::v4);
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"revision": "v5"})")).ok());
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"revision": 4})")).ok());
  auto v41 = options_from_json(ojson::parse(R"({"revision": "v4.1", "reasoning_effort": 80})"));
  ASSERT_TRUE(v41.ok()) << v41.status().to_string();
  EXPECT_EQ(v41->revision, EncoderRevision::v41);
  EXPECT_EQ(v41->thinking.effort, "80");
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"reasoning_effort": 80})")).ok());  // V4 has no numbers
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"revision": "v4.1", "reasoning_effort": 80.0})")).ok());
  EXPECT_FALSE(options_from_json(ojson::parse(R"({"revision": "v4.1", "reasoning_effort": true})")).ok());
}

}  // namespace
}  // namespace dsv4::text

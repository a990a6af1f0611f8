// Tokenizer exactness against the shared vectors (HF tokenizers 0.23.2 ids) — spec §7.1.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "test_paths.h"
#include "text/pretokenizer.h"
#include "text/utf8.h"

namespace dsv4::text {
namespace {

const Tokenizer& official() {
  static const Tokenizer tok = [] {
    auto r = Tokenizer::from_file(test::vendored_tokenizer_dir() + "/tokenizer.json");
    if (!r.ok()) {
      ADD_FAILURE() << r.status().to_string();
      std::abort();
    }
    return std::move(r).value();
  }();
  return tok;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s;
  for (auto x : v) s += std::to_string(x) + " ";
  return s;
}

TEST(Tokenizer, LoadsOfficialFileWithExpectedShape) {
  const auto& t = official();
  EXPECT_EQ(t.vocab_size(), 129280);
  EXPECT_EQ(t.merge_count(), 127741u);
  EXPECT_EQ(t.added_tokens().size(), 1283u);
  EXPECT_EQ(t.token_id("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_EQ(t.token_id("<｜end▁of▁sentence｜>"), 1);
  EXPECT_EQ(t.token_id("<｜User｜>"), 128803);
  EXPECT_EQ(t.token_id("<｜Assistant｜>"), 128804);
  EXPECT_EQ(t.token_id("｜DSML｜"), 128825);
  EXPECT_EQ(t.token_id("<｜latest_reminder｜>"), 128828);
  EXPECT_EQ(t.token_id("<think>"), 128821);
  EXPECT_EQ(t.token_id("</think>"), 128822);
  EXPECT_FALSE(t.token_id("<tool_result>").has_value());
  EXPECT_TRUE(t.is_special(0));
  EXPECT_FALSE(t.is_special(128803));
}

TEST(Tokenizer, PublicVectorsEncodeAndRoundTrip) {
  const auto j = read_json(test::shared_dir() + "/data/dsv4-vectors/tokenizer-vectors-public.json");
  const auto& cases = j.at("cases");
  ASSERT_EQ(cases.size(), 427u);
  size_t failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = cases[i].at("text");
    const std::vector<int32_t> want = cases[i].at("ids").get<std::vector<int32_t>>();
    const auto got = official().encode(text);
    if (got != want) {
      ++failures;
      ADD_FAILURE() << "case " << i << " text=" << nlohmann::json(text).dump() << "\n want " << ids_str(want)
                    << "\n got  " << ids_str(got);
    }
    EXPECT_EQ(official().decode(got), text) << "round trip, case " << i;
  }
  EXPECT_EQ(failures, 0u);
}

TEST(Tokenizer, DerivedConformanceCases) {
  const auto j = read_json(test::shared_dir() + "/data/dsv4-vectors/derived/tokenizer-conformance.json");
  const auto& cases = j.contains("cases") ? j["cases"] : j;
  size_t n = 0;
  for (const auto& c : cases) {
    if (!c.is_object() || !c.contains("text") || !c.contains("ids")) continue;
    ++n;
    const std::string text = c["text"];
    EXPECT_EQ(official().encode(text), c["ids"].get<std::vector<int32_t>>()) << c.value("id", std::string("?"));
  }
  EXPECT_EQ(n, 31u);
}

TEST(Tokenizer, ReferenceTokenizationsFromFacts) {
  const auto& t = official();
  EXPECT_EQ(t.encode("Hello world"), (std::vector<int32_t>{19923, 2058}));
  EXPECT_EQ(t.encode("1234567"), (std::vector<int32_t>{6895, 18009, 25}));
  EXPECT_EQ(t.encode("    int x;\n"), (std::vector<int32_t>{361, 688, 1527, 510}));
  EXPECT_EQ(t.encode("</think>\n\n"), (std::vector<int32_t>{128822, 271}));
  EXPECT_EQ(t.encode("<｜DSML｜tool_calls>"), (std::vector<int32_t>{30, 128825, 72461, 4941, 12548, 32}));
  EXPECT_EQ(t.encode("<｜User｜>你好<｜Assistant｜><think>推理</think>答案<｜end▁of▁sentence｜>"),
            (std::vector<int32_t>{128803, 30594, 128804, 128821, 36101, 128822, 7624, 1}));
  EXPECT_TRUE(t.encode("").empty());
}

TEST(Tokenizer, LongRunsUseTheHeapMergeAndAgreeWithShortOnes) {
  const auto& t = official();
  // A long run of one word repeated without separators exercises merge_large; its decode must
  // round-trip and splitting the same text into repeated pieces must give consistent ids.
  std::string s;
  for (int i = 0; i < 500; ++i) s += "abcdefgh";
  auto ids = t.encode(s);
  EXPECT_EQ(t.decode(ids), s);
  std::string spaces(100000, ' ');
  EXPECT_EQ(t.decode(t.encode(spaces)), spaces);
}

TEST(Tokenizer, InvalidUtf8IsEncodedBytewiseAndRoundTrips) {
  const auto& t = official();
  const std::string bad = std::string("ok \xff\xfe mid \xe4\xbd") + " end\xc3";
  const auto ids = t.encode(bad);
  EXPECT_EQ(t.decode(ids), bad);
}

TEST(Tokenizer, DecodeCheckedRejectsUnknownIds) {
  const std::vector<int32_t> ids{19923, 129280};
  auto r = official().decode_checked(ids);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("129280"), std::string::npos);
  EXPECT_EQ(official().decode(ids), "Hello");
}

TEST(Tokenizer, StreamDecoderNeverSplitsCharacters) {
  const auto& t = official();
  const std::string text = "Zürich 東京 😀 naïve — 混合专家模型";
  const auto ids = t.encode(text);
  StreamDecoder sd(t);
  std::string acc;
  for (int32_t id : ids) {
    std::string piece = sd.push(id);
    EXPECT_TRUE(utf8_is_valid(piece));
    acc += piece;
  }
  acc += sd.finish();
  EXPECT_EQ(acc, text);
  // Byte tokens of a 4-byte emoji pushed one at a time: nothing until the last byte.
  StreamDecoder sd2(t);
  const std::string emoji = "😀";
  std::string out;
  for (size_t i = 0; i < emoji.size(); ++i) {
    auto id = t.token_id(std::string(1, emoji[i]));
    ASSERT_TRUE(id.has_value());
    std::string piece = sd2.push(*id);
    if (i + 1 < emoji.size()) {
      EXPECT_TRUE(piece.empty());
    }
    out += piece;
  }
  EXPECT_EQ(out, emoji);
  // A lone continuation byte becomes U+FFFD; an unfinished sequence is flushed as U+FFFD.
  StreamDecoder sd3(t);
  EXPECT_EQ(sd3.push(*t.token_id("\x80")), "\xEF\xBF\xBD");
  EXPECT_EQ(sd3.push(*t.token_id("\xE6")), "");
  EXPECT_EQ(sd3.finish(), "\xEF\xBF\xBD");
}

TEST(Tokenizer, DemoModelTokenizerLoads) {
  auto r = load_tokenizer_for_model(test::demo_model_dir(), test::vendored_tokenizer_dir());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->vocab_size(), 8192);
  const std::string text = "<｜User｜>Hello, world 123<｜Assistant｜></think>";
  auto ids = r->encode(text);
  EXPECT_EQ(ids.front(), 2);
  EXPECT_EQ(r->decode(ids), text);
}

TEST(Tokenizer, MissingModelTokenizerFallsBackToVendored) {
  auto r = load_tokenizer_for_model("/nonexistent/model", test::vendored_tokenizer_dir());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->vocab_size(), 129280);
}

TEST(Tokenizer, BadTokenizerJsonIsAnErrorNotACrash) {
  EXPECT_FALSE(Tokenizer::from_json_text("").ok());
  EXPECT_FALSE(Tokenizer::from_json_text("{").ok());
  EXPECT_FALSE(Tokenizer::from_json_text("[]").ok());
  EXPECT_FALSE(Tokenizer::from_json_text(R"({"model": {"type": "Unigram"}})").ok());
  EXPECT_FALSE(Tokenizer::from_json_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})").ok());
  EXPECT_FALSE(Tokenizer::from_file("/nonexistent/tokenizer.json").ok());
}

TEST(Tokenizer, PatternTranslationAddsNelToWhitespace) {
  EXPECT_EQ(translate_pattern(R"(\s+(?!\S))"), R"([\s\x{85}]+(?![^\s\x{85}]))");
  EXPECT_EQ(translate_pattern(R"([^\s\p{L}])"), R"([^\s\x{85}\p{L}])");
  EXPECT_EQ(translate_pattern(R"([\\\]^]\s)"), R"([\\\]^][\s\x{85}])");
  // NEL is whitespace for the Oniguruma classes HF uses: "a\u0085\u0085b" keeps NELs together.
  const auto ids = official().encode("a\xC2\x85\xC2\x85" "b");
  EXPECT_EQ(official().decode(ids), "a\xC2\x85\xC2\x85" "b");
}

TEST(TokenizerFuzz, RandomBytesNeverCrashAndRoundTrip) {
  std::mt19937 rng(1234);
  const auto& t = official();
  const std::vector<std::string> atoms{"<｜User｜>", "<think>", "｜DSML｜", " ", "\n", "a", "1", "東", "\xff", "<｜", "é"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i) {
      if (rng() % 3 == 0) {
        s += atoms[rng() % atoms.size()];
      } else {
        s.push_back(static_cast<char>(rng() & 0xFF));
      }
    }
    const auto ids = t.encode(s);
    ASSERT_EQ(t.decode(ids), s) << "iteration " << iter;
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size());
  }
}

}  // namespace
}  // namespace dsv4::text

#include <openssl/evp.h>

namespace dsv4::text {
namespace {

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

TEST(TokenizerVendored, Sha256MatchesProvenance) {
  EXPECT_EQ(sha256_file(test::vendored_tokenizer_dir() + "/tokenizer.json"),
            "8f9f37ca37fdc4f5fd36d5cf4d3b0e8392edb4e894fd10cc0d70b4957c8633cf");
  EXPECT_EQ(sha256_file(test::vendored_tokenizer_dir() + "/tokenizer_config.json"),
            "6ac8c8dc065ed118161d02dd532749ae3f52c243deac27872134fae2f50d8547");
}

}  // namespace
}  // namespace dsv4::text

#include <thread>

namespace dsv4::text {
namespace {

// One Tokenizer shared by several threads (as the server does) gives the same ids as serial use.
TEST(TokenizerThreads, ConcurrentEncodeMatchesSerial) {
  const auto& t = official();
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i)
    texts.push_back("line " + std::to_string(i) + ": Zürich 東京 <｜User｜> def f(x): return x*" + std::to_string(i * 7));
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : texts) serial.push_back(t.encode(s));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> pool;
  for (int k = 0; k < 4; ++k)
    pool.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (t.encode(texts[(i + k * 37) % texts.size()]) != serial[(i + k * 37) % texts.size()]) ++mismatches[k];
    });
  for (auto& th : pool) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace dsv4::text

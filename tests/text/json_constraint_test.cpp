// Constrained decoding over the official V4 vocabulary: the trie walk's mask equals feeding
// every token to the automaton, and random sampling under many schemas always ends in text that
// parses and validates (checked by a validator written from JSON Schema's semantics, independent
// of the automaton).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "test_paths.h"
#include "text/json_schema_validator.h"
#include "text/json_constraint.h"

namespace dsv4::text {
namespace {

using json = nlohmann::json;
using test::valid;

const std::shared_ptr<const VocabTrie>& vocab() {
  static const std::shared_ptr<const VocabTrie> v = [] {
    auto tok = Tokenizer::from_file(test::vendored_tokenizer_dir() + "/tokenizer.json");
    EXPECT_TRUE(tok.ok());
    return std::make_shared<const VocabTrie>(*tok);
  }();
  return v;
}

// ---- Random schemas of the supported subset ----

json random_schema(std::mt19937_64& rng, int depth) {
  auto pick = [&](int n) { return int(rng() % uint64_t(n)); };
  const int kinds = depth >= 3 ? 7 : 11;
  switch (pick(kinds)) {
    case 0: return {{"type", "string"}};
    case 1: return {{"type", "integer"}};
    case 2: return {{"type", "number"}};
    case 3: return {{"type", "boolean"}};
    case 4: return {{"enum", json::array({"red", "green", "blue", "gr\u00e9en", 7, 77, nullptr})}};
    case 5: return {{"type", json::array({"string", "null"})}};
    case 6: return {{"const", "fixed"}};
    case 7: {
      json props = json::object(), req = json::array();
      const int n = 1 + pick(4);
      for (int i = 0; i < n; ++i) {
        const std::string name = std::string(1, char('a' + pick(6))) + (pick(2) ? "x" : "");
        props[name] = random_schema(rng, depth + 1);
        if (pick(2)) req.push_back(name);
      }
      std::sort(req.begin(), req.end());
      req.erase(std::unique(req.begin(), req.end()), req.end());
      return {{"type", "object"}, {"properties", props}, {"required", req}, {"additionalProperties", false}};
    }
    case 8: {
      json a = {{"type", "array"}, {"items", random_schema(rng, depth + 1)}};
      if (pick(2)) a["minItems"] = pick(2);
      if (pick(2)) a["maxItems"] = 2 + pick(3);
      return a;
    }
    case 9: return {{"anyOf", json::array({random_schema(rng, depth + 1), random_schema(rng, depth + 1)})}};
    default: return {{"type", "object"}};  // any object
  }
}

std::vector<json> fixed_schemas() {
  return {
      json{{"type", "object"}},
      json::parse(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
          "email":{"type":["string","null"]}},"required":["name","age","email"],"additionalProperties":false})"),
      json::parse(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"v":{"type":"number"},
          "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"]}}})"),
      json::parse(R"({"type":"object","properties":{"shape":{"anyOf":[
          {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
          {"type":"object","properties":{"kind":{"const":"square"},"s":{"type":"number"}},"required":["kind","s"]}]}},
          "required":["shape"]})"),
      json::parse(R"({"type":"object","additionalProperties":{"type":"array","items":{"type":"boolean"}}})"),
      json::parse(R"({"type":"array","items":{"enum":[1,12,123]},"minItems":1})"),
  };
}

// Tokens whose bytes end something (a string, a number, a container): sampling leans on them
// now and then so that random outputs finish within the token budget.
TokenBits closing_tokens() {
  TokenBits bits(vocab()->words(), 0);
  for (int32_t id = 0; id < vocab()->vocab_size(); ++id) {
    const std::string_view b = vocab()->bytes(id);
    if (b.find_first_of("\"}],") != std::string_view::npos) set_token_bit(bits, id);
  }
  return bits;
}

TEST(JsonConstraint, TrieMaskEqualsFeedingEveryToken) {
  auto g = compile_json_schema(fixed_schemas()[3], "schema");
  ASSERT_TRUE(g.ok());
  // Positions of every kind: document start, object keys, a string, an escape, a number, an
  // anyOf with two threads, the value complete.
  for (const char* text : {"", " {", R"({"shape":{"kind")", R"({"shape":{)", R"({"shape":{"kind":"circle","r":-1.)",
                           R"({"shape":{"kind":"circle","r":12)", R"({"shape":{"kind":"circle","r":12}})"}) {
    JsonConstraint c(*g, vocab());
    JsonMatcher m(*g);
    ASSERT_TRUE(m.feed(text));
    // Advance the constraint along the same bytes, one byte token at a time.
    for (char ch : std::string(text)) {
      const std::string one(1, ch);
      int32_t id = -1;
      for (int32_t t = 0; t < vocab()->vocab_size() && id < 0; ++t)
        if (vocab()->bytes(t) == one) id = t;
      ASSERT_GE(id, 0);
      c.advance(id);
    }
    const TokenBits& bits = c.allowed();
    size_t allowed = 0;
    for (int32_t t = 0; t < vocab()->vocab_size(); ++t) {
      JsonMatcher copy = m;
      const bool expect = !vocab()->bytes(t).empty() && copy.feed(vocab()->bytes(t));
      ASSERT_EQ(token_bit(bits, t), expect) << "after '" << text << "', token " << t << " '" << vocab()->bytes(t) << "'";
      allowed += expect;
    }
    EXPECT_EQ(c.complete(), m.accepting());
    EXPECT_TRUE(allowed > 0 || m.accepting()) << text;
  }
}

TEST(JsonConstraint, RandomSamplingAlwaysValidates) {
  std::mt19937_64 rng(20240531);
  std::vector<json> schemas = fixed_schemas();
  for (int i = 0; i < 60; ++i) schemas.push_back(random_schema(rng, 0));
  const TokenBits closing = closing_tokens();
  const int32_t eos = vocab()->eos_id();
  std::vector<float> logits(129280);
  // A cheap generator: 129k draws per token.
  uint64_t state = 88172645463325252ull;
  auto uni = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return float(state >> 40) * (1.0f / 16777216.0f);
  };
  int finished = 0, runs = 0;
  for (const json& schema : schemas) {
    auto g = compile_json_schema(schema, "schema");
    ASSERT_TRUE(g.ok()) << schema.dump() << ": " << g.status().message();
    for (int sample = 0; sample < 3; ++sample) {
      JsonConstraint c(*g, vocab());
      std::string text;
      bool ended = false;
      runs += 1;
      for (int step = 0; step < 400 && !ended; ++step) {
        const bool lean = uni() < 0.35f;
        for (size_t t = 0; t < logits.size(); ++t) {
          logits[t] = uni();
          if (lean && t < size_t(vocab()->vocab_size()) && token_bit(closing, int32_t(t))) logits[t] += 1.0f;
        }
        if (lean) logits[size_t(eos)] += 2.0f;
        ASSERT_TRUE(c.mask(logits)) << schema.dump() << " after " << text;
        const int32_t tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        ASSERT_TRUE(std::isfinite(logits[size_t(tok)]));
        c.advance(tok);
        if (tok == eos) ended = true;
        else text += vocab()->bytes(tok);
      }
      if (!ended) continue;  // the token budget ran out: a prefix, as with max_tokens
      finished += 1;
      const json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(v.is_discarded()) << schema.dump() << "\n" << text;
      EXPECT_TRUE(valid(v, schema, schema)) << schema.dump() << "\n" << text;
    }
  }
  // Most random walks end well within 400 tokens.
  EXPECT_GT(finished, runs * 3 / 4) << finished << " of " << runs;
}

// A valid answer passes the mask at every position, the end of sentence included (its cost per
// token: bench/text/constraint_mask_bench.cpp; speed is a benchmark's figure, not a test's).
TEST(JsonConstraint, AValidAnswerPassesTheMaskTokenByToken) {
  auto tok = Tokenizer::from_file(test::vendored_tokenizer_dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  auto g = compile_json_schema(fixed_schemas()[1], "schema");
  ASSERT_TRUE(g.ok());
  std::vector<int32_t> answer = tok->encode(
      "{\n  \"name\": \"Ada Lovelace \u2014 \u5206\u6790\u673a\", \"age\": 36,\n  \"email\": null\n}");
  answer.push_back(vocab()->eos_id());
  std::vector<float> logits(size_t(vocab()->vocab_size()));
  JsonConstraint c(*g, vocab());
  for (int32_t t : answer) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    ASSERT_TRUE(c.mask(logits));
    ASSERT_TRUE(std::isfinite(logits[size_t(t)])) << t;
    c.advance(t);
  }
}

}  // namespace
}  // namespace dsv4::text

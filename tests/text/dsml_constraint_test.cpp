// Strict tool calls over the official V4 vocabulary: the trie walk's mask equals feeding every
// token to the DSML matcher, and random sampling under the mask (free text, tool_choice required
// and named openings; V4 and V4.1 dialects) always ends in an answer that the completion parser
// reads without a fault, whose calls name declared tools and whose strict arguments validate
// (an independent validator: text/json_schema_validator.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "test_paths.h"
#include "text/chat_tokens.h"
#include "text/completion_parser.h"
#include "text/dsml_constraint.h"
#include "text/json_schema_validator.h"

namespace dsv4::text {
namespace {

using json = nlohmann::json;

struct Vocab {
  std::shared_ptr<const VocabTrie> trie;
  int32_t marker = -1;
  std::unique_ptr<Tokenizer> tok;
};

const Vocab& vocab() {
  static const Vocab v = [] {
    auto tok = Tokenizer::from_file(test::vendored_tokenizer_dir() + "/tokenizer.json");
    EXPECT_TRUE(tok.ok());
    Vocab v;
    v.trie = std::make_shared<const VocabTrie>(*tok);
    v.marker = tok->token_id(chat::kDsml).value_or(-1);
    v.tok = std::make_unique<Tokenizer>(std::move(*tok));
    return v;
  }();
  return v;
}

const json kTools = json::parse(R"([
  {"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},
     "units":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer"},"when":{"type":["string","null"]}},
     "required":["city","days"],"additionalProperties":false}},
  {"name":"set_alarm","parameters":{"type":"object","properties":{"at":{"type":"object","properties":{
     "h":{"type":"integer"},"m":{"type":"integer"}},"required":["h","m"],"additionalProperties":false},
     "label":{"anyOf":[{"type":"string"},{"type":"boolean"}]},"repeat":{"type":"array","items":{"enum":[1,2,3]},"maxItems":3}},
     "required":["at"],"additionalProperties":false}},
  {"name":"noop","parameters":{"type":"object","properties":{}}},
  {"name":"search"}
])");

// get_weather, set_alarm and noop strict; search free.
std::shared_ptr<const DsmlGrammar> grammar(EncoderRevision revision) {
  std::vector<DsmlTool> tools;
  for (const json& t : kTools) {
    DsmlTool d{t["name"], nullptr};
    if (t.contains("parameters")) {
      auto g = compile_json_schema(t["parameters"], "parameters");
      EXPECT_TRUE(g.ok());
      d.arguments = *g;
    }
    tools.push_back(std::move(d));
  }
  return dsml_grammar(tools, revision);
}

const json* tool_schema(const std::string& name) {
  for (const json& t : kTools)
    if (t["name"] == name) return t.contains("parameters") ? &t["parameters"] : nullptr;
  return nullptr;
}

int32_t byte_token(char ch) {
  for (int32_t t = 0; t < vocab().trie->vocab_size(); ++t)
    if (vocab().trie->bytes(t) == std::string(1, ch)) return t;
  return -1;
}

TEST(DsmlConstraint, TrieMaskEqualsFeedingEveryToken) {
  const auto g = grammar(EncoderRevision::v4);
  const std::string block = "\n\n<\uFF5CDSML\uFF5Ctool_calls>\n";
  const std::string invoke = block + "<\uFF5CDSML\uFF5Cinvoke name=\"get_weather\">\n";
  // Free text, the block, names, a raw value, a held-back `<`, a JSON value, the invoke's gap.
  for (const std::string& text :
       {std::string("Hi"), std::string("Hi\n\n<"), block, block + "<\uFF5CDSML\uFF5Cinvoke name=\"get",
        invoke + "<\uFF5CDSML\uFF5Cparameter name=\"city\" string=\"true\">Par",
        invoke + "<\uFF5CDSML\uFF5Cparameter name=\"city\" string=\"true\">Paris<",
        invoke + "<\uFF5CDSML\uFF5Cparameter name=\"days\" string=\"false\">1",
        invoke + "<\uFF5CDSML\uFF5Cparameter name=\"city\" string=\"true\">P</\uFF5CDSML\uFF5Cparameter>\n"}) {
    DsmlConstraint c(g, vocab().trie, vocab().marker);
    DsmlMatcher m(g);
    ASSERT_TRUE(m.feed(text)) << text;
    for (char ch : text) c.advance(byte_token(ch));
    const TokenBits& bits = c.allowed();
    size_t allowed = 0;
    for (int32_t t = 0; t < vocab().trie->vocab_size(); ++t) {
      DsmlMatcher copy = m;
      const bool expect = !vocab().trie->bytes(t).empty() && copy.feed(vocab().trie->bytes(t));
      ASSERT_EQ(token_bit(bits, t), expect) << "after '" << text << "', token " << t << " '" << vocab().trie->bytes(t) << "'";
      allowed += expect;
    }
    DsmlMatcher marker = m;
    EXPECT_EQ(c.marker_allowed(), marker.feed(chat::kDsml)) << text;
    EXPECT_EQ(c.complete(), m.accepting());
    EXPECT_GT(allowed, 0u) << text;
  }
}

// The tags a sampled answer writes, for leaning on them (see below).
std::vector<std::string> tag_texts(EncoderRevision revision) {
  std::vector<std::string> out = {"\" string=\"", "true\">", "false\">"};
  for (const chat::DsmlTags* t : dsml_dialects(revision))
    for (std::string_view s : {t->calls_open, t->calls_close, t->invoke_open_prefix, t->invoke_close,
                               t->param_open_prefix, t->param_close})
      out.emplace_back(s);
  out.push_back("\n\n" + std::string(dsml_tags(revision).calls_open));
  return out;
}

TEST(DsmlConstraint, RandomSamplingAlwaysParsesAndValidates) {
  const Vocab& v = vocab();
  const int32_t eos = v.trie->eos_id();
  std::vector<float> logits(129280);
  uint64_t state = 88172645463325252ull;
  auto uni = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return float(state >> 40) * (1.0f / 16777216.0f);
  };
  // Random text rarely ends a string or writes a tag by chance, so sampling leans: on tokens that
  // close JSON values now and then, and on the tokens that continue a tag whose start the text
  // ends with (a tag's pieces: `<`, `</`, the marker, `parameter>` ...) always.
  std::vector<int32_t> closing, pieces;
  for (int32_t id = 0; id < v.trie->vocab_size(); ++id) {
    const std::string_view b = v.trie->bytes(id);
    if (b.empty()) continue;
    if (b.find_first_of("\"}],") != std::string_view::npos) closing.push_back(id);
  }
  int calls = 0, finished = 0, runs = 0, free_duplicates = 0;
  for (EncoderRevision rev : {EncoderRevision::v4, EncoderRevision::v41}) {
    const auto g = grammar(rev);
    const std::vector<std::string> tags = tag_texts(rev);
    pieces.clear();
    for (int32_t id = 0; id < v.trie->vocab_size(); ++id) {
      const std::string_view b = v.trie->bytes(id);
      if (b.empty()) continue;
      for (const std::string& t : tags)
        if (t.find(b) != std::string::npos) {
          pieces.push_back(id);
          break;
        }
    }
    if (v.marker >= 0) pieces.push_back(v.marker);
    const chat::DsmlTags& dt = dsml_tags(rev);
    const std::string open = "\n\n" + std::string(dt.calls_open) + "\n";
    const std::string starts[] = {"", open + "<" + std::string(chat::kDsml),
                                  open + std::string(dt.invoke_open_prefix) + "set_alarm\">\n"};
    for (const std::string& start : starts) {
      for (int sample = 0; sample < 5; ++sample) {
        DsmlConstraint c(g, v.trie, v.marker, start);
        std::string text = start;
        bool ended = false;
        runs += 1;
        for (int step = 0; step < 400 && !ended; ++step) {
          auto bytes_of = [&](int32_t id) { return id == v.marker ? chat::kDsml : v.trie->bytes(id); };
          // The tags that may come where the text is (read off the text, in the block's dialect):
          // free text its cue; the block an invoke or its end; an invoke a parameter or its end;
          // a parameter its header's rest and closing tag.
          std::vector<std::string_view> now;
          size_t cue = std::string::npos;
          const chat::DsmlTags* bt = &dt;
          for (const chat::DsmlTags* d : dsml_dialects(rev)) {
            const size_t at = text.find("\n\n" + std::string(d->calls_open));
            if (at < cue) cue = at, bt = d;
          }
          auto last = [&](std::string_view t) {
            const size_t at = text.rfind(t);
            return at == std::string::npos || at < cue ? -1 : int64_t(at);
          };
          if (cue == std::string::npos) {
            now = {tags.back()};
          } else if (const int64_t p = last(bt->param_open_prefix); p > last(bt->param_close)) {
            const size_t attr = text.find("\" string=\"", size_t(p));
            if (attr != std::string::npos && text.find("\">", attr + 10) != std::string::npos) now = {bt->param_close};
            else now = {"\" string=\"", "true\">", "false\">"};
          } else if (last(bt->invoke_open_prefix) > last(bt->invoke_close)) {
            now = {bt->param_open_prefix, bt->invoke_close};
          } else {
            now = {bt->invoke_open_prefix, bt->calls_close};
          }
          // A tag under way: the longest suffix of the text that starts one.
          std::vector<std::string_view> next;
          for (std::string_view t : now)
            for (size_t k = std::min(t.size() - 1, text.size()); k > 0; --k)
              if (text.compare(text.size() - k, k, t, 0, k) == 0) {
                next.push_back(t.substr(k));
                break;
              }
          const bool lean = uni() < 0.35f;
          for (float& l : logits) l = uni();
          if (lean) {
            for (int32_t id : closing) logits[size_t(id)] += 1.0f;
            logits[size_t(eos)] += 2.0f;
            for (int32_t id : pieces)
              for (std::string_view t : now)
                if (t.rfind(bytes_of(id), 0) == 0) logits[size_t(id)] += 1.5f;
          }
          for (int32_t id : pieces)
            for (std::string_view rest : next)
              if (rest.rfind(bytes_of(id), 0) == 0) logits[size_t(id)] += 4.0f;
          ASSERT_TRUE(c.mask(logits)) << text;
          const int32_t tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
          ASSERT_TRUE(std::isfinite(logits[size_t(tok)]));
          c.advance(tok);
          if (tok == eos) ended = true;
          else text += bytes_of(tok);
        }
        if (!ended) continue;  // the token budget ran out: a prefix, as with max_tokens
        finished += 1;
        const ParsedCompletion p = CompletionParser::parse(text + std::string(chat::kEos), ThinkingMode::chat, rev);
        // The one fault left: a free tool's invoke may repeat a parameter name (dsml_matcher.h).
        if (p.malformed && p.error.rfind("duplicate parameter", 0) == 0 && text.find("name=\"search\"") != std::string::npos) {
          free_duplicates += 1;
          continue;
        }
        ASSERT_FALSE(p.malformed) << p.error << "\n" << text;
        ASSERT_TRUE(p.finished) << text;
        if (!start.empty()) {
          EXPECT_FALSE(p.tool_calls.empty()) << text;
        }
        for (const ToolCall& call : p.tool_calls) {
          calls += 1;
          bool declared = false;
          for (const json& t : kTools) declared = declared || t["name"] == call.name;
          ASSERT_TRUE(declared) << call.name;
          const json* schema = tool_schema(call.name);
          if (!schema) continue;
          const json args = json::parse(call.arguments, nullptr, false);
          ASSERT_FALSE(args.is_discarded()) << call.arguments;
          EXPECT_TRUE(test::valid(args, *schema, *schema)) << call.name << " " << call.arguments << "\n" << text;
        }
      }
    }
  }
  std::printf("%d of %d runs finished, %d calls, %d free invokes with a repeated parameter\n", finished, runs, calls,
              free_duplicates);
  // Random text ends a JSON string inside a string="false" value only by chance, so fewer walks
  // finish than with the JSON constraint; what matters is that none goes wrong.
  EXPECT_GE(finished, runs / 2) << finished << " of " << runs;
  EXPECT_GE(calls, runs / 4) << calls << " calls in " << runs << " runs";
}

// An answer of free text and a call of a strict tool passes the mask at every position, the
// end of sentence included (its cost per token: bench/text/constraint_mask_bench.cpp).
TEST(DsmlConstraint, AToolCallAnswerPassesTheMaskTokenByToken) {
  const Vocab& v = vocab();
  const auto g = grammar(EncoderRevision::v4);
  std::vector<int32_t> answer = v.tok->encode(
      "I will look it up.\n\n<\uFF5CDSML\uFF5Ctool_calls>\n<\uFF5CDSML\uFF5Cinvoke name=\"get_weather\">\n"
      "<\uFF5CDSML\uFF5Cparameter name=\"city\" string=\"true\">S\u00e3o Paulo \u2014 \u5723\u4fdd\u7f57"
      "</\uFF5CDSML\uFF5Cparameter>\n<\uFF5CDSML\uFF5Cparameter name=\"days\" string=\"false\">3"
      "</\uFF5CDSML\uFF5Cparameter>\n<\uFF5CDSML\uFF5Cparameter name=\"units\" string=\"true\">celsius"
      "</\uFF5CDSML\uFF5Cparameter>\n</\uFF5CDSML\uFF5Cinvoke>\n</\uFF5CDSML\uFF5Ctool_calls>");
  answer.push_back(v.trie->eos_id());
  std::vector<float> logits(size_t(v.trie->vocab_size()));
  DsmlConstraint c(g, v.trie, v.marker);
  for (int32_t t : answer) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    ASSERT_TRUE(c.mask(logits));
    ASSERT_TRUE(std::isfinite(logits[size_t(t)])) << t;
    c.advance(t);
  }
}

}  // namespace
}  // namespace dsv4::text

// Per-token cost of grammar-constrained decoding over the official V4 vocabulary: mask() +
// advance() along the tokens of an answer, for a JSON schema (text/json_constraint.h) with a
// cold mask cache (a new request) and a warm one (the same positions seen before), and for a
// strict tool call (text/dsml_constraint.h: free text, then a DSML block whose arguments follow
// the tool's schema), cold. Compare with a decode step: bench/README.md "Structured outputs"
// puts them side by side on the Flash-shaped synthetic.
//
//   build/constraint_mask_bench [--benchmark_filter=Cold]   (run from the repository root, or
//   set DSV4_TOKENIZER to the tokenizer.json to use)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "text/chat_tokens.h"
#include "text/dsml_constraint.h"
#include "text/json_constraint.h"

namespace dsv4::text {
namespace {

using json = nlohmann::json;

struct Setup {
  std::shared_ptr<const VocabTrie> vocab;
  std::shared_ptr<const JsonGrammar> grammar;
  std::vector<int32_t> answer;  // the answer's tokens, then EOS
  std::shared_ptr<const DsmlGrammar> tools;  // one strict tool, get_weather
  int32_t dsml_marker = -1;
  std::vector<int32_t> tool_answer;  // text, then a call of get_weather, then EOS
};

const Setup& setup() {
  static const Setup s = [] {
    const char* env = std::getenv("DSV4_TOKENIZER");
    auto tok = Tokenizer::from_file(env ? env : "data/tokenizer/tokenizer.json");
    DSV4_CHECK(tok.ok());
    Setup s;
    s.vocab = std::make_shared<const VocabTrie>(*tok);
    const json schema = json::parse(R"({"type":"object","properties":{
        "title":{"type":"string"},"year":{"type":"integer"},"rating":{"type":["number","null"]},
        "genres":{"type":"array","items":{"enum":["drama","comedy","science fiction","documentary"]}},
        "cast":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},
          "role":{"type":"string"}},"required":["name","role"],"additionalProperties":false}},
        "summary":{"type":"string"}},
        "required":["title","year","rating","genres","cast","summary"],"additionalProperties":false})");
    auto g = compile_json_schema(schema, "schema");
    DSV4_CHECK(g.ok());
    s.grammar = *g;
    const std::string answer =
        "{\n  \"title\": \"Solaris\",\n  \"year\": 1972,\n  \"rating\": 8.1,\n  \"genres\": [\"drama\", \"science "
        "fiction\"],\n  \"cast\": [\n    {\"name\": \"Natalya Bondarchuk\", \"role\": \"Hari\"},\n    {\"name\": "
        "\"Donatas Banionis\", \"role\": \"Kris Kelvin\"}\n  ],\n  \"summary\": \"A psychologist is sent to a space "
        "station orbiting the ocean planet Solaris, where the crew is haunted by \\\"guests\\\" \u2014 "
        "materialised memories \u8bb0\u5fc6 that the ocean draws from their minds.\"\n}";
    s.answer = tok->encode(answer);
    s.answer.push_back(s.vocab->eos_id());
    const json weather = json::parse(R"({"type":"object","properties":{"city":{"type":"string"},
        "units":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},
        "required":["city","days"],"additionalProperties":false})");
    auto wg = compile_json_schema(weather, "parameters");
    DSV4_CHECK(wg.ok());
    s.tools = dsml_grammar({DsmlTool{"get_weather", *wg}}, EncoderRevision::v4);
    s.dsml_marker = tok->token_id(chat::kDsml).value_or(-1);
    s.tool_answer = tok->encode(
        "I will look it up.\n\n<\uFF5CDSML\uFF5Ctool_calls>\n<\uFF5CDSML\uFF5Cinvoke name=\"get_weather\">\n"
        "<\uFF5CDSML\uFF5Cparameter name=\"city\" string=\"true\">S\u00e3o Paulo \u2014 \u5723\u4fdd\u7f57"
        "</\uFF5CDSML\uFF5Cparameter>\n<\uFF5CDSML\uFF5Cparameter name=\"days\" string=\"false\">3"
        "</\uFF5CDSML\uFF5Cparameter>\n<\uFF5CDSML\uFF5Cparameter name=\"units\" string=\"true\">celsius"
        "</\uFF5CDSML\uFF5Cparameter>\n</\uFF5CDSML\uFF5Cinvoke>\n</\uFF5CDSML\uFF5Ctool_calls>");
    s.tool_answer.push_back(s.vocab->eos_id());
    return s;
  }();
  return s;
}

void run_answer(runtime::TokenConstraint& c, const std::vector<int32_t>& answer, std::vector<float>& logits) {
  for (int32_t t : answer) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    DSV4_CHECK(c.mask(logits));
    c.advance(t);
  }
}

// A new request every time: every position's mask is walked.
void BM_MaskCold(benchmark::State& state) {
  const Setup& s = setup();
  std::vector<float> logits(size_t(s.vocab->vocab_size()));
  for (auto _ : state) {
    JsonConstraint c(s.grammar, s.vocab);
    run_answer(c, s.answer, logits);
  }
  state.SetItemsProcessed(int64_t(s.answer.size()) * state.iterations());  // items: tokens
}

// The same positions again (clones share the cache): a lookup and the logits pass.
void BM_MaskWarm(benchmark::State& state) {
  const Setup& s = setup();
  std::vector<float> logits(size_t(s.vocab->vocab_size()));
  JsonConstraint warm(s.grammar, s.vocab);
  {
    auto c = warm.clone();
    run_answer(*c, s.answer, logits);
  }
  for (auto _ : state) {
    auto c = warm.clone();
    run_answer(*c, s.answer, logits);
  }
  state.SetItemsProcessed(int64_t(s.answer.size()) * state.iterations());
}

// A strict tool call, a new request every time.
void BM_ToolCallMaskCold(benchmark::State& state) {
  const Setup& s = setup();
  std::vector<float> logits(size_t(s.vocab->vocab_size()));
  for (auto _ : state) {
    DsmlConstraint c(s.tools, s.vocab, s.dsml_marker);
    run_answer(c, s.tool_answer, logits);
  }
  state.SetItemsProcessed(int64_t(s.tool_answer.size()) * state.iterations());
}

BENCHMARK(BM_MaskCold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaskWarm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ToolCallMaskCold)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dsv4::text

BENCHMARK_MAIN();

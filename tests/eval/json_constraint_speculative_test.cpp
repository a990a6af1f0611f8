// Structured output on a real engine: a synthetic 0731 checkpoint (DSpark drafter, 5 drafts per
// round) with the demo tokenizer's vocabulary, a JSON-schema constraint from text/ through the
// scheduler's hook. The greedy answer is token for token the same with and without speculative
// decoding, and it is JSON that follows the schema.
#include <gtest/gtest.h>

#include <chrono>

#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "quiet_synth_options.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "test_paths.h"
#include "text/json_constraint.h"

namespace dsv4::eval {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

struct Answer {
  std::vector<int32_t> tokens;
  runtime::GenerationEvent finished;
};

Answer generate(runtime::Engine& e, std::shared_ptr<runtime::TokenConstraint> rule) {
  runtime::SchedulerOptions o;
  o.adaptive_drafting = false;  // draft at every step
  runtime::Scheduler s(e, o);
  runtime::GenerationRequest r;
  r.prompt = {0, 17, 99, 3, 250};
  r.sampling.temperature = 0;
  r.max_tokens = 400;
  r.constraint = std::move(rule);
  auto g = s.submit(std::move(r));
  EXPECT_TRUE(g.ok());
  Answer a;
  for (int i = 0; i < 100000; ++i) {
    auto ev = (*g)->next(100ms);
    if (!ev) continue;
    if (ev->kind == runtime::GenerationEvent::Kind::token) a.tokens.push_back(ev->sampled.token);
    if (ev->kind == runtime::GenerationEvent::Kind::finished) {
      a.finished = *ev;
      break;
    }
  }
  return a;
}

TEST(JsonConstraintSpeculative, GreedyAnswerIsTheSameWithDraftsAndFollowsTheSchema) {
  test::TempDir dir;
  SynthOptions so = test::quiet_synth_options(SynthPreset::tiny_0731);
  auto tok = text::Tokenizer::from_file(test::demo_model_dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  so.vocab = tok->vocab_size();
  ASSERT_TRUE(synth_checkpoint(so, dir.path()).ok());
  runtime::EngineOptions off;
  off.speculative = false;
  auto plain = runtime::Engine::load(dir.path(), off);
  auto spec = runtime::Engine::load(dir.path(), {});
  ASSERT_TRUE(plain.ok() && spec.ok());
  ASSERT_EQ((*spec)->max_draft_tokens(), 5);

  const json schema = json::parse(R"({"type":"object","properties":{"id":{"type":"integer"},
      "label":{"enum":["alpha","beta","gamma"]},"flags":{"type":"array","items":{"type":"boolean"},"maxItems":4},
      "child":{"anyOf":[{"type":"null"},{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}]}},
      "required":["id","label","flags","child"],"additionalProperties":false})");
  auto grammar = text::compile_json_schema(schema, "schema");
  ASSERT_TRUE(grammar.ok());
  const auto vocab = std::make_shared<const text::VocabTrie>(*tok);
  const Answer a = generate(**plain, std::make_shared<text::JsonConstraint>(*grammar, vocab));
  const Answer b = generate(**spec, std::make_shared<text::JsonConstraint>(*grammar, vocab));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.finished.finish, b.finished.finish);
  EXPECT_GT(b.finished.drafted_tokens, 0);
  ASSERT_EQ(a.finished.finish, runtime::FinishReason::stop);
  const std::string text = tok->decode(a.tokens);
  const json v = json::parse(text, nullptr, false);
  ASSERT_FALSE(v.is_discarded()) << text;
  EXPECT_TRUE(v["id"].is_number_integer()) << text;
  EXPECT_TRUE(v["label"] == "alpha" || v["label"] == "beta" || v["label"] == "gamma") << text;
  EXPECT_TRUE(v["flags"].is_array() && v["flags"].size() <= 4) << text;
  EXPECT_TRUE(v["child"].is_null() || v["child"]["x"].is_number()) << text;
}

}  // namespace
}  // namespace dsv4::eval

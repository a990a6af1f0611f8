// Token-level steering of a chat answer, the same for the HTTP APIs and the CLI
// (runtime::GenerationRequest has the semantics of each field):
//   - BOS is always banned: it only opens a conversation (spec §7.2); sampled inside an answer
//     it would be shown as text (issue #16 saw it once);
//   - in thinking mode `</think>` starts the answer, and a thinking budget forces it;
//   - tool_choice "required" / a named function forces the opening of a DSML tool-call block
//     at the start of the answer (spec §7.3; in the revision's DSML tags, v4.1 §11.3), and "none"
//     bans the token that opens one;
//   - a structured output constrains the answer to its grammar (runtime/token_constraint.h);
//   - tools with strict: true constrain the answer to calls whose arguments follow their schemas
//     (text/dsml_constraint.h), from the forced opening on where tool_choice forces one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "text/chat_encoding.h"
#include "text/dsml_matcher.h"
#include "text/thinking.h"
#include "text/tokenizer.h"
#include "text/vocab_trie.h"

namespace dsv4::text {

enum class ToolChoice { auto_, none, required, named };

struct OutputSteering {
  int32_t answer_start_token = -1;     // `</think>` in thinking mode; -1 = the answer opens the output
  std::vector<int32_t> answer_prefix;  // forced right after answer_start_token
  int64_t thinking_budget = 0;         // 0 = none
  std::vector<int32_t> banned_tokens;
  // A structured output's rule (one per request); null = free text.
  std::shared_ptr<runtime::TokenConstraint> constraint;
};

struct ToolSteering {
  ToolChoice choice = ToolChoice::auto_;  // auto_ also when the request has no tools
  std::string name;                       // ToolChoice::named: the function
  bool has_parameters = false;            // ToolChoice::named: its schema has properties
  // Some tools are strict (and choice is not none): the rule of the answer's tool calls, and the
  // vocabulary it masks.
  std::shared_ptr<const DsmlGrammar> grammar;
  std::shared_ptr<const VocabTrie> vocab;
};

// `thinking`: its mode and budget (the effort is the encoder's).
OutputSteering chat_steering(const Tokenizer& tok, EncoderRevision revision, const Thinking& thinking,
                             const ToolSteering& tools = {});

// Header-only: the text layer does not link the runtime.
inline void apply_steering(const OutputSteering& s, runtime::GenerationRequest& r) {
  r.answer_start_token = s.answer_start_token;
  r.answer_prefix = s.answer_prefix;
  r.thinking_budget = s.thinking_budget;
  r.banned_tokens = s.banned_tokens;
  r.constraint = s.constraint;
}

}  // namespace dsv4::text

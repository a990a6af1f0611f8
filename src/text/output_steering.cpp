#include "text/output_steering.h"

#include "text/chat_tokens.h"
#include "text/dsml_constraint.h"

namespace dsv4::text {

// The forced openings end where the tokenizer splits a complete call anyway (at the `｜DSML｜`
// token, or after `">\n` / `">\n\n`), so the model continues from the ids it would have
// produced itself (V4 tags shown; V4.1 writes `<｜DSML｜ calls>` and `<｜DSML｜ invoke name=`):
//   required  \n\n<｜DSML｜tool_calls>\n<｜DSML｜            the model names the function
//   named     \n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="NAME">\n   then its parameters
// (">\n\n for a function without parameters, as the encoder writes an empty invoke).
OutputSteering chat_steering(const Tokenizer& tok, EncoderRevision revision, const Thinking& thinking,
                             const ToolSteering& tools) {
  const chat::DsmlTags& tags = dsml_tags(revision);
  OutputSteering s;
  s.banned_tokens.push_back(tok.token_id(chat::kBos).value_or(0));
  const int32_t think_end = tok.token_id(chat::kThinkEnd).value_or(-1);
  if (thinking.on() && think_end >= 0) {
    s.answer_start_token = think_end;
    s.thinking_budget = thinking.budget;
  }
  std::string open = std::string(chat::kBeforeToolCalls) + std::string(tags.calls_open) + "\n";
  switch (tools.choice) {
    case ToolChoice::auto_: break;
    case ToolChoice::none:
      // Without the tools section the model has no reason to call; where `｜DSML｜` is one
      // token (the V4 tokenizer), banning it rules a call out.
      if (auto dsml = tok.token_id(chat::kDsml)) s.banned_tokens.push_back(*dsml);
      break;
    case ToolChoice::required:
      open += "<";
      open += chat::kDsml;
      s.answer_prefix = tok.encode(open);
      break;
    case ToolChoice::named:
      open += tags.invoke_open_prefix;
      open += tools.name;
      open += tools.has_parameters ? "\">\n" : "\">\n\n";
      s.answer_prefix = tok.encode(open);
      break;
  }
  // The rule starts after the forced opening, which it must have taken (the scheduler does not
  // show it forced tokens).
  if (tools.grammar && tools.choice != ToolChoice::none) {
    const std::string start = tools.choice == ToolChoice::auto_ ? std::string() : open;
    s.constraint = std::make_shared<DsmlConstraint>(tools.grammar, tools.vocab, tok.token_id(chat::kDsml).value_or(-1), start);
  }
  return s;
}

}  // namespace dsv4::text

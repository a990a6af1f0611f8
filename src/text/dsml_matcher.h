// The byte-level automaton of a chat answer that may call tools (spec §7.3; V4.1's dialect,
// v4.1 §11.3), for enforcing tools' `strict: true`: which byte strings are a prefix of an answer
// that the completion parser (text/completion_parser.h) reads without a fault and whose tool
// calls name declared tools, with every strict tool's arguments valid under its schema.
//
// Why a matcher of the whole answer rather than of the arguments alone: the model decides
// itself whether and when to call, so the rule must follow the free text to the block's cue and
// then every tag of the block; and the parser, not the token boundaries, decides where a value
// ends (at the first closing tag, even inside a JSON string), so the rule reads text as the
// parser does. The answer, in the parser's terms:
//   free text   anything but the texts that would make the parser flag it (｜DSML｜, <think>,
//               </think>, BOS, EOS spelled out), up to EOS or "\n\n" + a block's opening tag (any
//               dialect the parser reads for the revision: text::dsml_dialects)
//   block       whitespace, invokes, then the closing tag, whitespace and EOS
//   invoke      <｜DSML｜invoke name="NAME"> of a declared tool (no other name), parameters, the
//               closing tag; for a strict tool each parameter is a declared property at most
//               once, and the required ones all come before the closing tag
//   parameter   <｜DSML｜parameter name="K" string="true|false">VALUE</｜DSML｜parameter>:
//               string="true" (where the property's schema takes a string) writes the string
//               raw, string="false" writes JSON; either way the value the parser renders
//               validates against the property (text/json_matcher runs its schema node: a raw
//               value is fed to it as the JSON string the parser makes of it)
// Tools without `strict` keep their parameters free: any name, any value (the parser takes a
// non-JSON value as a string). A free invoke may repeat a parameter (the parser then drops the
// block to content); a strict one never does.
// Whitespace gaps between tags are bounded (kMaxWhitespace), as in JSON.
//
// Every live position can still be completed: the tests below refuse a byte that leaves none (a
// parameter tag when no property is left, a closing tag before the required ones, a value's
// closing tag before the value is complete, a `<` that neither continues the value nor starts a
// closing tag the value could end at).
//
// A DsmlMatcher is a value: copy it to branch. Not thread-safe; the grammar is shared.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "text/encoder_revision.h"
#include "text/json_matcher.h"

namespace dsv4::text {

// A tool the answer may call.
struct DsmlTool {
  std::string name;
  std::shared_ptr<const JsonGrammar> arguments;  // strict: its parameters' grammar; null = free
};

// The tools of a request, compiled for the matcher.
struct DsmlGrammar {
  struct Tool {
    std::shared_ptr<const JsonGrammar> arguments;  // null = free parameters
    uint32_t object = 0;                           // the arguments' object node
    std::vector<std::string> params;  // `K" string="` of each writable property, sorted bytewise
    std::vector<uint32_t> keys;       // params[i]'s key index in the object node
  };
  std::vector<const chat::DsmlTags*> dialects;
  // Free text: the cues ("\n\n" + opening tag), one per dialect, then the forbidden texts.
  std::vector<std::string> watched;
  bool first_byte[256] = {};  // a byte that starts a watched text
  std::vector<std::string> headers;  // `NAME">` of each tool, sorted bytewise
  std::vector<Tool> tools;           // tools[i] is headers[i]'s
};

// Whether the arguments of a strict tool can be enforced: its schema must be an object with
// `properties` (not free keys), and every required property a name the DSML header can spell
// (no `"`, `<` or newline). invalid_argument names the problem at `where` (the schema's location).
Status check_strict_arguments(const JsonGrammar& arguments, const std::string& where);

// The grammar of an answer that may call `tools` (strict ones checked by check_strict_arguments)
// in the dialects of `revision`. A tool whose name a header cannot spell (a `"`, `<` or newline)
// cannot be called; a repeated name keeps its first tool.
std::shared_ptr<const DsmlGrammar> dsml_grammar(const std::vector<DsmlTool>& tools, EncoderRevision revision);

class DsmlMatcher {
 public:
  // At the start of the answer (free text).
  explicit DsmlMatcher(std::shared_ptr<const DsmlGrammar> grammar);

  // This position after byte `b`, written into `out` (whose storage is reused). False, and `out`
  // meaningless, when `b` is refused.
  bool step(uint8_t b, DsmlMatcher& out) const;
  // In place; false when some byte is refused (the matcher is then dead).
  bool feed(std::string_view bytes);

  bool dead() const { return dead_; }
  // The answer may end here (the end-of-sentence token): in free text, or after the block.
  bool accepting() const;

  // Threads: those of the JSON value being written, one otherwise (text/trie_mask.h).
  size_t thread_count() const;
  DsmlMatcher thread(size_t i) const;
  // Inside a parameter value's string body (a raw value, a JSON string, or a free value), with
  // no closing tag begun: a string-neutral token leaves the position unchanged.
  bool in_string_body() const;
  // Equal keys, equal positions.
  std::string key() const;

 private:
  // Plain bytes without padding: the state part of the key.
  struct State {
    uint8_t phase = 0;    // Phase (dsml_matcher.cpp)
    uint8_t dialect = 0;  // the block's, an index into DsmlGrammar::dialects
    uint8_t ws = 0;       // whitespace bytes in the current gap
    uint8_t raw = 0;      // value: string="true"
    uint32_t a = 0, b = 0, c = 0;  // per phase: watched text or candidates, name range, bytes read
    uint32_t tool = 0, key = 0;    // the invoke's tool, the parameter's key index
    uint32_t unused = 0;
    uint64_t seen = 0;  // strict invoke: bit i = key i written
  };
  static_assert(sizeof(State) == 40);

  bool strict() const;
  bool valued() const;  // writing a strict tool's value: value_ holds it
  bool step_text(uint8_t b, State& s) const;
  bool step_value(uint8_t b, DsmlMatcher& out) const;
  bool literal_step(uint8_t b, State& s) const;
  void enter_invoke(State& s) const;
  uint32_t flag_candidates(const State& s) const;
  bool value_may_close(const JsonMatcher& v) const;

  std::shared_ptr<const DsmlGrammar> grammar_;
  State s_;
  std::optional<JsonMatcher> value_;  // meaningful only while valued()
  bool dead_ = false;
};

}  // namespace dsv4::text

// The byte-level automaton of a JsonGrammar (text/json_schema.h): which byte strings are a
// prefix of a JSON text (RFC 8259) that validates against the grammar.
//
// A position is a set of threads; a thread is a stack of frames, one per open value (the
// document, objects, arrays, then a string, number, literal or key being written). Reading a
// byte advances every thread; an anyOf (or a type array) forks one thread per alternative at
// the byte that starts its value, and threads that reject the byte die. So the automaton is a
// nondeterministic pushdown automaton, run breadth-first; identical threads are merged.
//
// Every live position can still be completed (the schema compiler prunes values that cannot
// end, and every test below refuses a byte that would leave no way to finish: a `,` with no
// property left to write, a key prefix of properties already written, a lone surrogate escape),
// except at the nesting limit kMaxNesting, where a schema that requires deeper values has none.
//
// Lexical choices: strings take any valid UTF-8 (no overlong forms, no UTF-16 surrogates) and
// every JSON escape, \u surrogates in pairs only; numbers follow RFC 8259 (integer: no fraction
// or exponent) within digit bounds that keep every number inside an IEEE double and every
// integer inside int64 (parsers refuse or mangle larger ones: nlohmann::json fails on 1e400);
// at most kMaxWhitespace whitespace bytes in a row wherever JSON allows them, none after the
// value (only the end of the text may follow it).
//
// A JsonMatcher is a value: copy it to branch. Not thread-safe; the grammar is shared.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "text/json_schema.h"

namespace dsv4::text {

// A newline plus 7 levels of 2-space indentation (pretty-printed JSON) fits; a model cannot
// spend unbounded output on whitespace.
inline constexpr int kMaxWhitespace = 16;
// 18 digits < 2^63; at most 10^18 * 10^99 < DBL_MAX (about 1.8 * 10^308).
inline constexpr uint32_t kMaxIntegerDigits = 18;
inline constexpr uint32_t kMaxFractionDigits = 18;
inline constexpr uint32_t kMaxExponentDigits = 2;

// One open value. Plain bytes without padding, so that a stack compares and hashes as memory.
struct JsonFrame {
  uint32_t node = 0;   // grammar node
  uint8_t kind = 0;    // FrameKind (json_matcher.cpp)
  uint8_t phase = 0;   // the kind's lexical phase
  uint8_t ws = 0;      // whitespace bytes in the current gap
  uint8_t unused = 0;
  uint32_t a = 0, b = 0, c = 0, d = 0;  // per kind: literal range and offset, item count, key, escape
  uint64_t seen = 0;   // object: bit i = keys[i] written
};
static_assert(sizeof(JsonFrame) == 32);

// Narrows [lo, hi) of bytewise-sorted texts that share their first `off` bytes to those whose
// byte `off` is b; false (range untouched) when none is. Object keys and literals here, tool and
// parameter names in text/dsml_matcher.
bool narrow_sorted(const std::vector<std::string>& texts, uint32_t& lo, uint32_t& hi, uint32_t off, uint8_t b);

class JsonMatcher {
 public:
  // At the start of the document: a value of the grammar's root, or of `node` (a property's
  // value, as a DSML tool-call parameter holds it: text/dsml_matcher.h).
  explicit JsonMatcher(std::shared_ptr<const JsonGrammar> grammar);
  JsonMatcher(std::shared_ptr<const JsonGrammar> grammar, uint32_t node);

  // This position after byte `b`, written into `out` (whose storage is reused; it must share this
  // matcher's grammar). False, and `out` dead, when no thread takes `b`.
  bool step(uint8_t b, JsonMatcher& out) const;
  // In place; false when some byte is refused (the matcher is then dead).
  bool feed(std::string_view bytes);

  bool dead() const { return ends_.empty(); }
  // A complete value has been read: the text may end here.
  bool accepting() const;

  size_t thread_count() const { return ends_.size(); }
  // The matcher of thread i alone (a position is the union of its threads).
  JsonMatcher thread(size_t i) const;
  // One thread inside a string (a value or a key) between characters: any text without `"`,
  // `\`, control characters or broken UTF-8 keeps it there unchanged.
  bool in_string_body() const;
  // The bytes of the frames: equal keys, equal positions.
  std::string_view key() const;
  // step() writes only into a matcher of the same grammar.
  bool shares_grammar(const JsonMatcher& other) const { return nodes_ == other.nodes_; }

 private:
  enum class Outcome { reject, accept, forked };
  std::span<const JsonFrame> frames_of(size_t i) const;
  Outcome advance(size_t base, uint8_t b);
  Outcome start_value(size_t base, uint32_t node, uint8_t b);
  Outcome object_byte(size_t base, uint8_t b);
  Outcome array_byte(size_t base, uint8_t b);
  bool open_leaf(uint32_t leaf, uint8_t b, size_t depth);
  void add_thread(size_t begin);

  std::shared_ptr<const JsonGrammar> grammar_;
  const JsonNode* nodes_ = nullptr;
  std::vector<JsonFrame> frames_;  // the threads' stacks, one after another
  std::vector<uint32_t> ends_;     // end of each thread in frames_
  std::vector<JsonFrame> stem_;    // scratch of start_value
};

}  // namespace dsv4::text

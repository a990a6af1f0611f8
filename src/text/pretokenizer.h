// Pre-tokenizer of tokenizer.json (spec §7.1): a sequence of regex "Split" steps with the
// "Isolated" behaviour, each applied to the pieces left by the previous step, followed by the
// ByteLevel step (which, with use_regex=false, only changes the byte alphabet — done in bpe).
//
// Regexes run on PCRE2 in UTF + UCP mode with JIT. HF tokenizers uses Oniguruma, whose \s is
// the Unicode White_Space property; PCRE2's \s lacks U+0085 (NEL), so patterns are rewritten
// to add it (see translate_pattern in the .cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace dsv4::text {

class RegexSplitter;  // one compiled Split step

class PreTokenizer {
 public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Builds from the "pre_tokenizer" object of tokenizer.json (null = no splitting).
  // Supported: Sequence, Split (Regex or String pattern, behavior Isolated, invert false),
  // ByteLevel (add_prefix_space false; use_regex true adds the GPT-2 split).
  static Result<PreTokenizer> from_json(const nlohmann::json& j);

  // Calls emit(piece) for each piece of text, in order. text must be valid UTF-8.
  // The pieces are views into text and cover it exactly.
  void split(std::string_view text, const std::function<void(std::string_view)>& emit) const;

 private:
  Status add_step(const nlohmann::json& j);
  void split_level(size_t level, std::string_view piece, const std::function<void(std::string_view)>& emit) const;
  std::vector<std::unique_ptr<RegexSplitter>> steps_;
};

// Exposed for tests: PCRE2 form of an Oniguruma pattern from tokenizer.json.
std::string translate_pattern(std::string_view onig_pattern);

}  // namespace dsv4::text

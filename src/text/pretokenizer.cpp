#include "text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace dsv4::text {

// GPT-2 pre-tokenizer regex, used when a ByteLevel step has use_regex=true.
static constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string translate_pattern(std::string_view p) {
  // Walks the pattern, tracking whether we are inside a character class, and widens \s / \S
  // by U+0085 so that they equal Oniguruma's Unicode White_Space classes.
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

namespace {

// Per-thread PCRE2 scratch: match data and a JIT stack. pcre2 code objects are shared and
// read-only; only these must not be shared between threads.
struct MatchScratch {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchScratch() {
    md = pcre2_match_data_create(4, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (mctx && jit_stack) pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
  }
  ~MatchScratch() {
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    if (mctx) pcre2_match_context_free(mctx);
    if (md) pcre2_match_data_free(md);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

class RegexSplitter {
 public:
  ~RegexSplitter() {
    if (code_) pcre2_code_free(code_);
  }
  static Result<std::unique_ptr<RegexSplitter>> compile(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    const std::string translated = translate_pattern(pattern);
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof buf);
      return Status::invalid_argument("pre-tokenizer regex '" + pattern + "' does not compile at offset " +
                                      std::to_string(off) + ": " + reinterpret_cast<char*>(buf));
    }
    // JIT is an optimisation only: pcre2_match falls back to the interpreter without it.
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    auto r = std::unique_ptr<RegexSplitter>(new RegexSplitter());
    r->code_ = code;
    return r;
  }

  // "Isolated" split: matches and the stretches between them are pieces, in order.
  template <typename F>
  void split(std::string_view s, F&& emit) const {
    MatchScratch& sc = scratch();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t last = 0, offset = 0;
    while (offset < s.size()) {
      // NO_UTF_CHECK: the tokenizer validated the text once; checking per call would be O(n^2).
      const int rc = pcre2_match(code_, subject, s.size(), offset, PCRE2_NO_UTF_CHECK, sc.md, sc.mctx);
      if (rc < 0) break;  // no match (or a resource limit: the rest stays one piece)
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(sc.md);
      const size_t ms = ov[0], me = ov[1];
      if (me <= ms) {
        // Empty match: not a piece. Step over one code point to make progress.
        offset = ms + 1;
        while (offset < s.size() && (static_cast<unsigned char>(s[offset]) & 0xC0) == 0x80) ++offset;
        continue;
      }
      if (ms > last) emit(s.substr(last, ms - last));
      emit(s.substr(ms, me - ms));
      last = offset = me;
    }
    if (last < s.size()) emit(s.substr(last));
  }

 private:
  RegexSplitter() = default;
  pcre2_code* code_ = nullptr;
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

Status PreTokenizer::add_step(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return Status::invalid_argument("pre_tokenizer step without a \"type\"");
  const std::string type = j["type"];
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return Status::invalid_argument("Sequence pre_tokenizer without a \"pretokenizers\" array");
    for (const auto& sub : j["pretokenizers"]) DSV4_TRY(add_step(sub));
    return Status::ok_status();
  }
  if (type == "Split") {
    const std::string behavior = j.value("behavior", "");
    if (behavior != "Isolated") return Status::unsupported("Split pre_tokenizer behavior '" + behavior + "'");
    if (j.value("invert", false)) return Status::unsupported("Split pre_tokenizer with invert=true");
    if (!j.contains("pattern") || !j["pattern"].is_object())
      return Status::invalid_argument("Split pre_tokenizer without a pattern");
    const auto& pat = j["pattern"];
    std::string regex;
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      regex = pat["Regex"];
    } else if (pat.contains("String") && pat["String"].is_string()) {
      // A literal string: quote it for the regex engine.
      regex = "\\Q" + pat["String"].get<std::string>() + "\\E";
    } else {
      return Status::invalid_argument("Split pre_tokenizer pattern is neither Regex nor String");
    }
    DSV4_ASSIGN_OR_RETURN(auto step, RegexSplitter::compile(regex));
    steps_.push_back(std::move(step));
    return Status::ok_status();
  }
  if (type == "ByteLevel") {
    if (j.value("add_prefix_space", false)) return Status::unsupported("ByteLevel pre_tokenizer with add_prefix_space");
    if (j.value("use_regex", true)) {
      DSV4_ASSIGN_OR_RETURN(auto step, RegexSplitter::compile(kGpt2Pattern));
      steps_.push_back(std::move(step));
    }
    return Status::ok_status();  // the byte mapping itself happens in the BPE model
  }
  return Status::unsupported("pre_tokenizer type '" + type + "'");
}

Result<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j) {
  PreTokenizer p;
  if (j.is_null()) return p;
  DSV4_TRY(p.add_step(j));
  return p;
}

void PreTokenizer::split_level(size_t level, std::string_view piece,
                               const std::function<void(std::string_view)>& emit) const {
  if (level == steps_.size()) {
    emit(piece);
    return;
  }
  steps_[level]->split(piece, [&](std::string_view sub) { split_level(level + 1, sub, emit); });
}

void PreTokenizer::split(std::string_view text, const std::function<void(std::string_view)>& emit) const {
  if (text.empty()) return;
  split_level(0, text, emit);
}

}  // namespace dsv4::text

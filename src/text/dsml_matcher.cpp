#include "text/dsml_matcher.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace dsv4::text {
namespace {

enum Phase : uint8_t {
  kText,        // a = watched text, c = its bytes matched by the text's end
  kBlock,       // between invokes; a = candidate tags (bit 0 invoke, bit 1 block close), c = bytes read
  kInvokeName,  // [a, b) = the tool headers that start with the c bytes read
  kInvoke,      // between parameters; a = candidate tags (bit 0 parameter, bit 1 invoke close), c
  kParamName,   // strict: [a, b) = the parameter headers that start with the c bytes read
  kFreeName,    // free: c = name bytes read
  kAttr,        // free: `" string="`, c bytes read (a = 1)
  kFlag,        // a = candidates (bit 0 `true">`, bit 1 `false">`), c bytes read
  kValue,       // c = bytes of the closing tag read (held back from the value)
  kAfterBlock,  // whitespace, then EOS
};

constexpr std::string_view kStringAttr = "\" string=\"";
constexpr std::string_view kFlags[2] = {"true\">", "false\">"};
// A free parameter name (any text without `"`, `<` or a newline) is at most this long; the
// parser reads a header of up to 1024 bytes.
constexpr uint32_t kMaxFreeName = 256;

bool is_space(uint8_t b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; }

bool spellable(std::string_view name) { return !name.empty() && name.find_first_of("\"<\n") == std::string_view::npos; }

// The JSON text the parser makes of a raw value's byte, as nlohmann::json writes it (the
// schema's enum / const texts are written that way: text/json_schema.h).
void append_escaped(std::string& out, uint8_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (b) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    default:
      if (b < 0x20) {
        out += "\\u00";
        out += kHex[b >> 4];
        out += kHex[b & 15];
      } else {
        out += char(b);
      }
  }
}

bool needs_escape(uint8_t b) { return b < 0x20 || b == '"' || b == '\\'; }

// Feeds `bytes` to a value matcher, escaped when the value is raw.
bool feed_value(JsonMatcher& v, std::string_view bytes, bool raw) {
  if (!raw) return v.feed(bytes);
  std::string escaped;
  for (char c : bytes) append_escaped(escaped, uint8_t(c));
  return v.feed(escaped);
}

uint32_t object_node(const JsonGrammar& g) {
  const JsonNode& root = g.nodes[g.root];
  return root.leaves.size() == 1 && g.nodes[root.leaves[0]].kind == JsonNode::Kind::object ? root.leaves[0] : UINT32_MAX;
}

std::string key_name(const std::string& key_json) { return nlohmann::json::parse(key_json).get<std::string>(); }

}  // namespace

Status check_strict_arguments(const JsonGrammar& arguments, const std::string& where) {
  const uint32_t object = object_node(arguments);
  if (object == UINT32_MAX) return Status::invalid_argument("'" + where + "' must be an object schema (type object)");
  const JsonNode& n = arguments.nodes[object];
  if (n.keys.empty() && n.additional >= 0)
    return Status::invalid_argument("'" + where +
                                    "' must list its parameters in 'properties' (with additionalProperties false) to "
                                    "be enforced");
  for (size_t i = 0; i < n.keys.size(); ++i)
    if ((n.required >> i & 1) && !spellable(key_name(n.keys[i])))
      return Status::invalid_argument("'" + where + "': the required property " + n.keys[i] +
                                      " cannot be written as a tool-call parameter name (no quotes, '<' or newlines)");
  return {};
}

std::shared_ptr<const DsmlGrammar> dsml_grammar(const std::vector<DsmlTool>& tools, EncoderRevision revision) {
  auto g = std::make_shared<DsmlGrammar>();
  for (const chat::DsmlTags* t : dsml_dialects(revision)) {
    g->dialects.push_back(t);
    g->watched.push_back(std::string(chat::kBeforeToolCalls) + std::string(t->calls_open));
  }
  // What the parser flags inside content (CompletionParser::finish).
  for (std::string_view f : {chat::kDsml, chat::kThinkStart, chat::kThinkEnd, chat::kBos, chat::kEos})
    g->watched.emplace_back(f);
  for (const std::string& w : g->watched) g->first_byte[uint8_t(w[0])] = true;

  std::vector<std::pair<std::string, const DsmlTool*>> named;
  for (const DsmlTool& t : tools)
    if (spellable(t.name)) named.emplace_back(t.name + "\">", &t);
  std::stable_sort(named.begin(), named.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  named.erase(std::unique(named.begin(), named.end(), [](const auto& x, const auto& y) { return x.first == y.first; }),
              named.end());
  for (const auto& [header, tool] : named) {
    DsmlGrammar::Tool t;
    t.arguments = tool->arguments;
    if (t.arguments) {
      t.object = object_node(*t.arguments);
      DSV4_CHECK(t.object != UINT32_MAX);
      const JsonNode& n = t.arguments->nodes[t.object];
      std::vector<std::pair<std::string, uint32_t>> params;
      for (uint32_t i = 0; i < n.keys.size(); ++i) {
        const std::string name = key_name(n.keys[i]);
        if (spellable(name)) params.emplace_back(name + std::string(kStringAttr), i);
      }
      std::sort(params.begin(), params.end());
      for (auto& [p, k] : params) {
        t.params.push_back(std::move(p));
        t.keys.push_back(k);
      }
    }
    g->headers.push_back(header);
    g->tools.push_back(std::move(t));
  }
  return g;
}

DsmlMatcher::DsmlMatcher(std::shared_ptr<const DsmlGrammar> grammar) : grammar_(std::move(grammar)) {}

bool DsmlMatcher::strict() const { return grammar_->tools[s_.tool].arguments != nullptr; }
bool DsmlMatcher::valued() const { return s_.phase == kValue && strict(); }

bool DsmlMatcher::accepting() const { return !dead_ && (s_.phase == kText || s_.phase == kAfterBlock); }

size_t DsmlMatcher::thread_count() const { return valued() ? value_->thread_count() : 1; }

DsmlMatcher DsmlMatcher::thread(size_t i) const {
  DsmlMatcher m(*this);
  if (valued()) m.value_ = value_->thread(i);
  return m;
}

bool DsmlMatcher::in_string_body() const {
  return s_.phase == kValue && s_.c == 0 && (!strict() || value_->in_string_body());
}

std::string DsmlMatcher::key() const {
  std::string k(reinterpret_cast<const char*>(&s_), sizeof(State));
  if (valued()) k += value_->key();
  return k;
}

bool DsmlMatcher::feed(std::string_view bytes) {
  DsmlMatcher next(*this);
  for (char c : bytes) {
    if (dead_ || !step(uint8_t(c), next)) {
      dead_ = true;
      return false;
    }
    std::swap(*this, next);
  }
  return !dead_;
}

// Free text: the state is the longest suffix of the text that is a proper prefix of a watched
// text (a, c). A cue completed opens the block; a forbidden text completed (alone, or inside
// what was a cue's prefix until this byte) is refused.
bool DsmlMatcher::step_text(uint8_t b, State& s) const {
  const DsmlGrammar& g = *grammar_;
  if (s.c == 0 && !g.first_byte[b]) return true;
  std::string t = g.watched[s.a].substr(0, s.c);
  t += char(b);
  for (size_t d = 0; d < g.dialects.size(); ++d) {
    if (g.watched[d].compare(0, t.size(), t) != 0) continue;
    if (t.size() == g.watched[d].size()) {
      s = State{};
      s.phase = kBlock;
      s.dialect = uint8_t(d);
      s.a = (g.headers.empty() ? 0u : 1u) | 2u;
      return true;
    }
    s.a = uint32_t(d);
    s.c = uint32_t(t.size());
    return true;
  }
  for (size_t w = g.dialects.size(); w < g.watched.size(); ++w)
    if (t.find(g.watched[w]) != std::string::npos) return false;
  for (size_t len = t.size(); len > 0; --len) {
    const std::string_view suffix = std::string_view(t).substr(t.size() - len);
    for (size_t w = 0; w < g.watched.size(); ++w)
      if (g.watched[w].size() > len && g.watched[w].compare(0, len, suffix) == 0) {
        s.a = uint32_t(w);
        s.c = uint32_t(len);
        return true;
      }
  }
  s.a = s.c = 0;
  return true;
}

// The candidate tags of an invoke's gap: another parameter while one can still be written,
// the closing tag once the required ones are.
void DsmlMatcher::enter_invoke(State& s) const {
  const DsmlGrammar::Tool& t = grammar_->tools[s.tool];
  s.phase = kInvoke;
  s.ws = 0;
  s.c = 0;
  s.raw = 0;
  if (!t.arguments) {
    s.a = 3;
    return;
  }
  bool more = false;
  for (uint32_t k : t.keys) more = more || !(s.seen >> k & 1);
  const uint64_t required = t.arguments->nodes[t.object].required;
  s.a = (more ? 1u : 0u) | ((required & ~s.seen) == 0 ? 2u : 0u);
}

// string="true" where the property takes a string (its value starts with `"`), "false" always.
uint32_t DsmlMatcher::flag_candidates(const State& s) const {
  const DsmlGrammar::Tool& t = grammar_->tools[s.tool];
  if (!t.arguments) return 3;
  JsonMatcher v(t.arguments, t.arguments->nodes[t.object].values[s.key]);
  return (v.feed("\"") ? 1u : 0u) | 2u;
}

// The value may end here: the parser's rendering of it is complete.
bool DsmlMatcher::value_may_close(const JsonMatcher& v) const {
  if (!s_.raw) return v.accepting();
  JsonMatcher closed(v);
  return closed.feed("\"") && closed.accepting();
}

// The tags of the literal phases: one of up to two texts, `a` the candidates left.
bool DsmlMatcher::literal_step(uint8_t b, State& s) const {
  const chat::DsmlTags& tags = *grammar_->dialects[s.dialect];
  std::string_view lits[2];
  switch (s.phase) {
    case kBlock: lits[0] = tags.invoke_open_prefix, lits[1] = tags.calls_close; break;
    case kInvoke: lits[0] = tags.param_open_prefix, lits[1] = tags.invoke_close; break;
    case kAttr: lits[0] = kStringAttr; break;
    case kFlag: lits[0] = kFlags[0], lits[1] = kFlags[1]; break;
    default: return false;
  }
  if (s.c == 0 && is_space(b) && (s.phase == kBlock || s.phase == kInvoke)) {
    if (s.ws >= kMaxWhitespace) return false;
    s.ws += 1;
    return true;
  }
  uint32_t left = 0;
  for (uint32_t i = 0; i < 2; ++i)
    if ((s.a >> i & 1) && lits[i].size() > s.c && uint8_t(lits[i][s.c]) == b) left |= 1u << i;
  if (left == 0) return false;
  s.a = left;
  s.c += 1;
  // No text of a set is a prefix of the other: at most one is complete, and then alone.
  const uint32_t i = left & 1 ? 0 : 1;
  if (lits[i].size() != s.c) return true;
  const Phase phase = Phase(s.phase);
  s.c = 0;
  s.ws = 0;
  switch (phase) {
    case kBlock:
      if (i == 0) {
        s.phase = kInvokeName;
        s.a = 0;
        s.b = uint32_t(grammar_->headers.size());
      } else {
        s.phase = kAfterBlock;
      }
      return true;
    case kInvoke:
      if (i == 1) {
        s.phase = kBlock;
        s.a = (grammar_->headers.empty() ? 0u : 1u) | 2u;
      } else if (strict()) {
        s.phase = kParamName;
        s.a = 0;
        s.b = uint32_t(grammar_->tools[s.tool].params.size());
      } else {
        s.phase = kFreeName;
      }
      return true;
    case kAttr:
      s.phase = kFlag;
      s.a = flag_candidates(s);
      return true;
    default:  // kFlag
      s.phase = kValue;
      s.raw = i == 0;
      return true;
  }
}

// A value runs to the first closing tag (where the parser ends it, even inside a JSON string).
// Bytes that may be the tag's start are held back (c); when the tag breaks off they are the
// value's. The tag has `<` only at its start, so a broken tag restarts only at a `<`.
bool DsmlMatcher::step_value(uint8_t b, DsmlMatcher& out) const {
  const std::string_view tag = grammar_->dialects[s_.dialect]->param_close;
  const bool json = valued();
  State& s = out.s_;
  if (json && (!out.value_ || !out.value_->shares_grammar(*value_))) out.value_ = value_;
  if (uint8_t(tag[s_.c]) == b) {
    if (s_.c + 1 == tag.size()) {  // the value ends
      if (json && !value_may_close(*value_)) return false;
      s.seen |= json ? uint64_t(1) << s_.key : 0;
      enter_invoke(s);
      return true;
    }
    s.c = s_.c + 1;
    if (!json) return true;
    *out.value_ = *value_;
    // Live only if the tag may close the value here or the held bytes may be the value's.
    if (value_may_close(*value_)) return true;
    JsonMatcher probe(*value_);
    return feed_value(probe, tag.substr(0, s.c), s_.raw);
  }
  s.c = b == '<' ? 1 : 0;
  if (!json) return true;
  JsonMatcher& v = *out.value_;
  if (s_.c == 0 && b != '<' && !(s_.raw && needs_escape(b))) {
    if (!value_->step(b, v)) return false;
  } else {
    v = *value_;
    std::string bytes(tag.substr(0, s_.c));
    if (b != '<') bytes += char(b);
    if (!feed_value(v, bytes, s_.raw)) return false;
  }
  if (b != '<' || value_may_close(v)) return true;
  JsonMatcher probe(v);
  return feed_value(probe, "<", s_.raw);
}

bool DsmlMatcher::step(uint8_t b, DsmlMatcher& out) const {
  DSV4_CHECK(!dead_);
  if (out.grammar_ != grammar_) out.grammar_ = grammar_;
  out.dead_ = false;
  out.s_ = s_;
  State& s = out.s_;
  const DsmlGrammar& g = *grammar_;
  switch (Phase(s_.phase)) {
    case kText: return step_text(b, s);
    case kBlock:
    case kInvoke:
    case kAttr: return literal_step(b, s);
    case kFlag:
      if (!literal_step(b, s)) return false;
      if (s.phase == kValue && strict()) {  // the property's value starts (a raw one as a JSON string)
        const DsmlGrammar::Tool& t = g.tools[s.tool];
        out.value_.emplace(t.arguments, t.arguments->nodes[t.object].values[s.key]);
        const bool opened = !s.raw || out.value_->feed("\"");
        DSV4_CHECK(opened);
      }
      return true;
    case kInvokeName:
      if (!narrow_sorted(g.headers, s.a, s.b, s.c, b)) return false;
      s.c += 1;
      if (g.headers[s.a].size() != s.c) return true;  // a header ends with `">`: no prefix of another
      s.tool = s.a;
      s.seen = 0;
      enter_invoke(s);
      return true;
    case kParamName: {
      const DsmlGrammar::Tool& t = g.tools[s.tool];
      if (!narrow_sorted(t.params, s.a, s.b, s.c, b)) return false;
      bool unseen = false;
      for (uint32_t i = s.a; i < s.b && !unseen; ++i) unseen = !(s.seen >> t.keys[i] & 1);
      if (!unseen) return false;
      s.c += 1;
      if (t.params[s.a].size() != s.c) return true;  // a header ends with `" string="`
      s.key = t.keys[s.a];
      s.phase = kFlag;
      s.c = 0;
      s.a = flag_candidates(s);
      return true;
    }
    case kFreeName:
      if (b == '"' && s.c > 0) {
        s.phase = kAttr;
        s.a = 1;
        s.c = 1;
        return true;
      }
      if (b == '"' || b == '<' || b == '\n' || s.c >= kMaxFreeName) return false;
      s.c += 1;
      return true;
    case kValue: return step_value(b, out);
    case kAfterBlock:
      if (!is_space(b) || s.ws >= kMaxWhitespace) return false;
      s.ws += 1;
      return true;
  }
  return false;
}

}  // namespace dsv4::text

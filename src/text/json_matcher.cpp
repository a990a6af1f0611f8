#include "text/json_matcher.h"

#include <algorithm>
#include <cstring>

namespace dsv4::text {
namespace {

using Kind = JsonNode::Kind;

enum FrameKind : uint8_t { kTop, kObject, kArray, kString, kKeyString, kKeyLiteral, kLiteral, kNumber };
// kTop
enum : uint8_t { kTopValue, kTopDone };
// kObject: a key frame sits above the object between kObjOpen / kObjComma and kObjColon.
enum : uint8_t { kObjOpen, kObjColon, kObjValue, kObjAfter, kObjComma };
// kArray (a = items so far; capped at min_items when there is no maximum)
enum : uint8_t { kArrOpen, kArrAfter, kArrComma };
// kString / kKeyString (escape: a = code unit so far, c = hex digits; UTF-8: [a, b] = the next
// byte's range, c = continuation bytes left)
enum : uint8_t { kStrBody, kStrEscape, kStrHex, kStrLowBackslash, kStrLowU, kStrLowHex, kStrUtf8 };
// kNumber
enum : uint8_t { kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumExpSign, kNumExp };
// kLiteral / kKeyLiteral: [a, b) = the texts that start with the bytes read, c = bytes read.

constexpr uint32_t kAdditionalKey = UINT32_MAX;  // object a: the value of a free key

bool is_ws(uint8_t b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }

bool take_ws(JsonFrame& f) {
  if (f.ws >= kMaxWhitespace) return false;
  ++f.ws;
  return true;
}

int hex_digit(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

enum class StringStep { reject, more, closed };

StringStep string_byte(JsonFrame& f, uint8_t b) {
  auto utf8 = [&](uint32_t lo, uint32_t hi, uint32_t left) {
    f.phase = kStrUtf8;
    f.a = lo;
    f.b = hi;
    f.c = left;
    return StringStep::more;
  };
  auto body = [&] {
    f.phase = kStrBody;
    f.a = f.b = f.c = 0;
    return StringStep::more;
  };
  switch (f.phase) {
    case kStrBody:
      if (b == '"') return StringStep::closed;
      if (b == '\\') {
        f.phase = kStrEscape;
        return StringStep::more;
      }
      if (b < 0x20) return StringStep::reject;
      if (b < 0x80) return StringStep::more;
      // UTF-8 (RFC 3629 §4): no overlong forms, no surrogates, nothing past U+10FFFF.
      if (b >= 0xC2 && b <= 0xDF) return utf8(0x80, 0xBF, 1);
      if (b == 0xE0) return utf8(0xA0, 0xBF, 2);
      if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return utf8(0x80, 0xBF, 2);
      if (b == 0xED) return utf8(0x80, 0x9F, 2);
      if (b == 0xF0) return utf8(0x90, 0xBF, 3);
      if (b >= 0xF1 && b <= 0xF3) return utf8(0x80, 0xBF, 3);
      if (b == 0xF4) return utf8(0x80, 0x8F, 3);
      return StringStep::reject;
    case kStrUtf8:
      if (b < f.a || b > f.b) return StringStep::reject;
      if (f.c == 1) return body();
      return utf8(0x80, 0xBF, f.c - 1);
    case kStrEscape:
      if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't') return body();
      if (b != 'u') return StringStep::reject;
      f.phase = kStrHex;
      f.a = f.c = 0;
      return StringStep::more;
    case kStrHex:
    case kStrLowHex: {
      const int h = hex_digit(b);
      if (h < 0) return StringStep::reject;
      f.a = f.a * 16 + uint32_t(h);
      f.c += 1;
      if (f.phase == kStrHex) {
        // A low surrogate (DC00-DFFF) with no high one before it is refused as soon as its first
        // two digits show it, so that no position is left without a valid continuation.
        if (f.c == 2 && f.a >= 0xDC && f.a <= 0xDF) return StringStep::reject;
        if (f.c < 4) return StringStep::more;
        if (f.a >= 0xD800 && f.a <= 0xDBFF) {  // a high surrogate: its low half must follow
          f.phase = kStrLowBackslash;
          f.a = f.c = 0;
          return StringStep::more;
        }
        return body();
      }
      if ((f.c == 1 && f.a != 0xD) || (f.c == 2 && f.a < 0xDC)) return StringStep::reject;
      return f.c < 4 ? StringStep::more : body();
    }
    case kStrLowBackslash:
      if (b != '\\') return StringStep::reject;
      f.phase = kStrLowU;
      return StringStep::more;
    case kStrLowU:
      if (b != 'u') return StringStep::reject;
      f.phase = kStrLowHex;
      f.a = f.c = 0;
      return StringStep::more;
    default: return StringStep::reject;
  }
}

bool number_complete(const JsonFrame& f) {
  return f.phase == kNumZero || f.phase == kNumInt || f.phase == kNumFrac || f.phase == kNumExp;
}

// RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; an integer stops before '.'/'e'.
// a = digits of the current part, bounded (kMaxIntegerDigits ...).
bool number_byte(JsonFrame& f, uint8_t b, bool integer) {
  const bool digit = b >= '0' && b <= '9';
  auto to = [&](uint8_t phase, uint32_t digits) {
    f.phase = phase;
    f.a = digits;
    return true;
  };
  auto more = [&](uint32_t limit) {
    if (f.a >= limit) return false;
    f.a += 1;
    return true;
  };
  switch (f.phase) {
    case kNumMinus:
      if (b == '0') return to(kNumZero, 1);
      return digit && to(kNumInt, 1);
    case kNumZero:
    case kNumInt:
    case kNumFrac:
      if (digit && f.phase != kNumZero) return more(f.phase == kNumInt ? kMaxIntegerDigits : kMaxFractionDigits);
      if (integer) return false;
      if (b == '.' && f.phase != kNumFrac) return to(kNumDot, 0);
      if (b == 'e' || b == 'E') return to(kNumE, 0);
      return false;
    case kNumDot: return digit && to(kNumFrac, 1);
    case kNumE:
      if (b == '+' || b == '-') return to(kNumExpSign, 0);
      return digit && to(kNumExp, 1);
    case kNumExpSign: return digit && to(kNumExp, 1);
    case kNumExp: return digit && more(kMaxExponentDigits);
    default: return false;
  }
}

uint64_t all_keys(size_t n) { return n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1; }

}  // namespace

// Within the range the byte at `off` (-1 past the end) never decreases.
bool narrow_sorted(const std::vector<std::string>& texts, uint32_t& lo, uint32_t& hi, uint32_t off, uint8_t b) {
  auto at = [&](uint32_t i) { return texts[i].size() > off ? int(uint8_t(texts[i][off])) : -1; };
  uint32_t l = lo, h = hi;
  while (l < h) {  // first with at() >= b
    const uint32_t m = l + (h - l) / 2;
    if (at(m) < int(b)) l = m + 1;
    else h = m;
  }
  uint32_t e = l, h2 = hi;
  while (e < h2) {  // first with at() > b
    const uint32_t m = e + (h2 - e) / 2;
    if (at(m) <= int(b)) e = m + 1;
    else h2 = m;
  }
  if (l == e) return false;
  lo = l;
  hi = e;
  return true;
}

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonGrammar> grammar) : JsonMatcher(grammar, grammar->root) {}

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonGrammar> grammar, uint32_t node)
    : grammar_(std::move(grammar)), nodes_(grammar_->nodes.data()) {
  DSV4_CHECK(node < grammar_->nodes.size());
  JsonFrame top;
  top.kind = kTop;
  top.node = node;
  frames_.push_back(top);
  ends_.push_back(1);
}

std::span<const JsonFrame> JsonMatcher::frames_of(size_t i) const {
  const size_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::span<const JsonFrame>(frames_.data() + begin, ends_[i] - begin);
}

bool JsonMatcher::step(uint8_t b, JsonMatcher& out) const {
  DSV4_CHECK(out.nodes_ == nodes_);
  out.frames_.clear();
  out.ends_.clear();
  for (size_t i = 0; i < ends_.size(); ++i) {
    const auto t = frames_of(i);
    const size_t begin = out.frames_.size();
    out.frames_.insert(out.frames_.end(), t.begin(), t.end());
    switch (out.advance(begin, b)) {
      case Outcome::accept: out.add_thread(begin); break;
      case Outcome::reject: out.frames_.resize(begin); break;
      case Outcome::forked: break;
    }
  }
  return !out.dead();
}

bool JsonMatcher::feed(std::string_view bytes) {
  JsonMatcher next(*this);
  for (char c : bytes) {
    if (!step(uint8_t(c), next)) {
      frames_.clear();
      ends_.clear();
      return false;
    }
    std::swap(frames_, next.frames_);
    std::swap(ends_, next.ends_);
  }
  return true;
}

void JsonMatcher::add_thread(size_t begin) {
  const size_t len = frames_.size() - begin;
  for (size_t i = 0; i < ends_.size(); ++i) {
    const auto t = frames_of(i);
    if (t.size() == len && std::memcmp(t.data(), frames_.data() + begin, len * sizeof(JsonFrame)) == 0) {
      frames_.resize(begin);
      return;
    }
  }
  ends_.push_back(uint32_t(frames_.size()));
}

bool JsonMatcher::accepting() const {
  for (size_t i = 0; i < ends_.size(); ++i) {
    const auto t = frames_of(i);
    if (t.size() == 1 && t[0].phase == kTopDone) return true;
    // The document's value is a number or a literal that could go on or end here.
    if (t.size() == 2 && t[0].phase == kTopDone) {
      const JsonFrame& f = t[1];
      if (f.kind == kNumber && number_complete(f)) return true;
      if (f.kind == kLiteral && nodes_[f.node].literals[f.a].size() == f.c) return true;
    }
  }
  return false;
}

JsonMatcher JsonMatcher::thread(size_t i) const {
  JsonMatcher m(*this);
  const auto t = frames_of(i);
  m.frames_.assign(t.begin(), t.end());
  m.ends_.assign(1, uint32_t(t.size()));
  return m;
}

bool JsonMatcher::in_string_body() const {
  if (ends_.size() != 1) return false;
  const JsonFrame& f = frames_.back();
  return (f.kind == kString || f.kind == kKeyString) && f.phase == kStrBody;
}

std::string_view JsonMatcher::key() const {
  return std::string_view(reinterpret_cast<const char*>(frames_.data()), frames_.size() * sizeof(JsonFrame));
}

// The thread in frames_[base, end) takes byte b. Values that may end or go on (numbers,
// literals such as 1 and 12) hand a byte they cannot take to the value around them.
JsonMatcher::Outcome JsonMatcher::advance(size_t base, uint8_t b) {
  for (;;) {
    JsonFrame& f = frames_.back();
    const JsonNode& n = nodes_[f.node];
    switch (f.kind) {
      case kTop:
        if (f.phase == kTopDone) return Outcome::reject;
        if (is_ws(b)) return take_ws(f) ? Outcome::accept : Outcome::reject;
        f.phase = kTopDone;
        f.ws = 0;
        return start_value(base, f.node, b);
      case kObject: return object_byte(base, b);
      case kArray: return array_byte(base, b);
      case kString:
      case kKeyString: {
        const StringStep s = string_byte(f, b);
        if (s == StringStep::reject) return Outcome::reject;
        if (s == StringStep::closed) {
          const bool key = f.kind == kKeyString;
          frames_.pop_back();
          if (key) {
            frames_.back().phase = kObjColon;
            frames_.back().a = kAdditionalKey;
          }
        }
        return Outcome::accept;
      }
      case kKeyLiteral: {
        JsonFrame& object = frames_[frames_.size() - 2];
        if (!narrow_sorted(n.keys, f.a, f.b, f.c, b)) return Outcome::reject;
        f.c += 1;
        bool unseen = false;
        for (uint32_t i = f.a; i < f.b && !unseen; ++i) unseen = !(object.seen >> i & 1);
        if (!unseen) return Outcome::reject;
        // A key text ends with its closing quote, so it is no other key's prefix: the range
        // holds exactly one key once the bytes read are a whole one.
        if (n.keys[f.a].size() == f.c) {
          object.a = f.a;
          object.seen |= uint64_t(1) << f.a;
          object.phase = kObjColon;
          frames_.pop_back();
        }
        return Outcome::accept;
      }
      case kLiteral: {
        if (narrow_sorted(n.literals, f.a, f.b, f.c, b)) {
          f.c += 1;
          if (n.literals[f.a].size() == f.c && f.b - f.a == 1) frames_.pop_back();
          return Outcome::accept;
        }
        if (n.literals[f.a].size() != f.c) return Outcome::reject;
        frames_.pop_back();  // complete: the byte belongs to the enclosing value
        continue;
      }
      case kNumber:
        if (number_byte(f, b, n.kind == Kind::integer)) return Outcome::accept;
        if (!number_complete(f)) return Outcome::reject;
        frames_.pop_back();
        continue;
      default: return Outcome::reject;
    }
  }
}

JsonMatcher::Outcome JsonMatcher::object_byte(size_t base, uint8_t b) {
  JsonFrame& f = frames_.back();
  const JsonNode& n = nodes_[f.node];
  const bool unseen_keys = (all_keys(n.keys.size()) & ~f.seen) != 0;
  if (is_ws(b)) return take_ws(f) ? Outcome::accept : Outcome::reject;
  switch (f.phase) {
    case kObjOpen:
    case kObjComma:
      if (b == '}' && f.phase == kObjOpen && (n.required & ~f.seen) == 0) {
        frames_.pop_back();
        return Outcome::accept;
      }
      if (b != '"') return Outcome::reject;
      f.ws = 0;
      if (!n.keys.empty()) {
        if (!unseen_keys) return Outcome::reject;
        JsonFrame k;
        k.kind = kKeyLiteral;
        k.node = f.node;
        k.b = uint32_t(n.keys.size());
        frames_.push_back(k);
        return advance(base, b);
      }
      if (n.additional < 0) return Outcome::reject;
      {
        JsonFrame k;
        k.kind = kKeyString;
        k.node = f.node;
        frames_.push_back(k);
      }
      return Outcome::accept;
    case kObjColon:
      if (b != ':') return Outcome::reject;
      f.phase = kObjValue;
      f.ws = 0;
      return Outcome::accept;
    case kObjValue: {
      const uint32_t value = f.a == kAdditionalKey ? uint32_t(n.additional) : n.values[f.a];
      f.phase = kObjAfter;
      f.a = 0;
      f.ws = 0;
      return start_value(base, value, b);
    }
    case kObjAfter:
      if (b == ',' && (n.additional >= 0 || unseen_keys)) {
        f.phase = kObjComma;
        f.ws = 0;
        return Outcome::accept;
      }
      if (b == '}' && (n.required & ~f.seen) == 0) {
        frames_.pop_back();
        return Outcome::accept;
      }
      return Outcome::reject;
    default: return Outcome::reject;
  }
}

JsonMatcher::Outcome JsonMatcher::array_byte(size_t base, uint8_t b) {
  JsonFrame& f = frames_.back();
  const JsonNode& n = nodes_[f.node];
  if (is_ws(b)) return take_ws(f) ? Outcome::accept : Outcome::reject;
  if (b == ']' && f.phase != kArrComma && f.a >= n.min_items) {
    frames_.pop_back();
    return Outcome::accept;
  }
  if (f.phase == kArrAfter) {
    if (b != ',' || f.a >= n.max_items) return Outcome::reject;
    f.phase = kArrComma;
    f.ws = 0;
    return Outcome::accept;
  }
  if (n.max_items == 0) return Outcome::reject;
  // Without a maximum only "at least min_items yet" matters: the count stops there.
  const uint32_t next = f.a + 1;
  f.a = n.max_items == kUnboundedItems ? std::min(next, n.min_items) : next;
  f.phase = kArrAfter;
  f.ws = 0;
  return start_value(base, n.items, b);
}

JsonMatcher::Outcome JsonMatcher::start_value(size_t base, uint32_t node, uint8_t b) {
  const std::vector<uint32_t>& leaves = nodes_[node].leaves;
  const size_t depth = frames_.size() - base;
  if (leaves.size() == 1) return open_leaf(leaves[0], b, depth) ? Outcome::accept : Outcome::reject;
  // One thread per alternative that takes b.
  stem_.assign(frames_.begin() + std::ptrdiff_t(base), frames_.end());
  frames_.resize(base);
  for (uint32_t leaf : leaves) {
    const size_t begin = frames_.size();
    frames_.insert(frames_.end(), stem_.begin(), stem_.end());
    if (open_leaf(leaf, b, depth)) add_thread(begin);
    else frames_.resize(begin);
  }
  return Outcome::forked;
}

// Pushes the frame of a value of `leaf` whose first byte is b (none for a one-byte literal).
bool JsonMatcher::open_leaf(uint32_t leaf, uint8_t b, size_t depth) {
  const JsonNode& n = nodes_[leaf];
  JsonFrame f;
  f.node = leaf;
  switch (n.kind) {
    case Kind::object:
    case Kind::array:
      if (b != (n.kind == Kind::object ? '{' : '[') || depth > size_t(kMaxNesting)) return false;
      f.kind = n.kind == Kind::object ? kObject : kArray;
      break;
    case Kind::string:
      if (b != '"') return false;
      f.kind = kString;
      break;
    case Kind::number:
    case Kind::integer:
      f.kind = kNumber;
      if (b == '-') f.phase = kNumMinus;
      else if (b == '0') f.phase = kNumZero;
      else if (b >= '1' && b <= '9') f.phase = kNumInt;
      else return false;
      f.a = b == '-' ? 0 : 1;  // digits so far
      break;
    case Kind::literal:
      f.kind = kLiteral;
      f.b = uint32_t(n.literals.size());
      if (!narrow_sorted(n.literals, f.a, f.b, 0, b)) return false;
      f.c = 1;
      if (n.literals[f.a].size() == 1 && f.b - f.a == 1) return true;
      break;
    case Kind::any_of: return false;  // never a leaf
  }
  frames_.push_back(f);
  return true;
}

}  // namespace dsv4::text

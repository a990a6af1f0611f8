#include "text/utf8.h"

namespace dsv4::text {

size_t utf8_sequence_length(std::string_view s, size_t pos) {
  const size_t n = s.size();
  if (pos >= n) return 0;
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;        // no overlongs
    else if (b0 == 0xED) hi = 0x9F;   // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F;   // <= U+10FFFF
  } else {
    return 0;
  }
  if (pos + len > n) return 0;
  const auto b1 = static_cast<unsigned char>(s[pos + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

size_t utf8_valid_run_end(std::string_view s, size_t pos) {
  const size_t n = s.size();
  while (pos < n) {
    // Fast path for ASCII, which dominates most inputs.
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t len = utf8_sequence_length(s, pos);
    if (len == 0) break;
    pos += len;
  }
  return pos;
}

size_t utf8_incomplete_tail(std::string_view s) {
  const size_t n = s.size();
  // A sequence is at most 4 bytes, so an unfinished one starts within the last 3 bytes.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t pos = n - back;
    const auto b0 = static_cast<unsigned char>(s[pos]);
    if (b0 < 0x80) return 0;
    if (b0 < 0xC0) continue;  // continuation byte: keep looking for the lead
    size_t need = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
    if (need <= back) return 0;  // the sequence would be complete (or invalid), not unfinished
    // The bytes present must be a valid prefix. Pad the missing ones with the lowest and the
    // highest continuation byte: one of them is inside the allowed range of the second byte
    // for every lead (E0/F0 need a high one, ED/F4 a low one).
    for (char pad : {static_cast<char>(0x80), static_cast<char>(0xBF)}) {
      std::string probe(s.substr(pos));
      probe.resize(need, pad);
      if (utf8_sequence_length(probe, 0) == need) return back;
    }
    return 0;
  }
  return 0;
}

uint32_t utf8_decode_at(std::string_view s, size_t pos, size_t len) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = utf8_valid_run_end(s, pos);
    out.append(s.substr(pos, end - pos));
    if (end < s.size()) {
      utf8_append(out, 0xFFFD);
      pos = end + 1;
    } else {
      pos = end;
    }
  }
  return out;
}

}  // namespace dsv4::text

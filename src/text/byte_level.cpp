#include "text/byte_level.h"

#include <array>

#include "text/utf8.h"

namespace dsv4::text {
namespace {

struct Tables {
  // Table code points are all below 0x200 (256 + at most 256 remapped bytes).
  std::array<int16_t, 0x200> to_byte{};
  Tables() {
    to_byte.fill(-1);
    // Printable Latin-1 bytes keep their own code point; the others (controls, space, DEL,
    // NBSP, soft hyphen...) are moved to 256, 257, ... in byte order.
    auto keeps_own = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = keeps_own(b) ? static_cast<uint32_t>(b) : next++;
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::optional<uint8_t> codepoint_to_byte(uint32_t cp) {
  if (cp >= 0x200) return std::nullopt;
  const int16_t b = tables().to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::optional<std::string> byte_level_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t len = utf8_sequence_length(s, pos);
    if (len == 0) return std::nullopt;
    auto b = codepoint_to_byte(utf8_decode_at(s, pos, len));
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    pos += len;
  }
  return out;
}

}  // namespace dsv4::text

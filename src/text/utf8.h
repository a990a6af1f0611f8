// UTF-8 helpers shared by the tokenizer (input validation, spec §7.1), the streaming decoder
// and the completion parser (which must never cut a multi-byte character in a delta).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv4::text {

// Length of the well-formed UTF-8 sequence starting at s[pos] (1..4), or 0 when the bytes there
// are not a valid sequence (bad lead byte, bad continuation, overlong, surrogate, > U+10FFFF,
// or the sequence is cut off by the end of s).
size_t utf8_sequence_length(std::string_view s, size_t pos);

// End of the maximal run of well-formed UTF-8 starting at pos (== pos when s[pos] is invalid).
size_t utf8_valid_run_end(std::string_view s, size_t pos);

inline bool utf8_is_valid(std::string_view s) { return utf8_valid_run_end(s, 0) == s.size(); }

// Number of trailing bytes of s that are the start of a well-formed sequence still missing
// continuation bytes (0..3). Those bytes may become valid once more input arrives.
size_t utf8_incomplete_tail(std::string_view s);

// Decodes one code point from a position known to hold a valid sequence of length len.
uint32_t utf8_decode_at(std::string_view s, size_t pos, size_t len);

// Appends the UTF-8 encoding of cp (cp must be a scalar value).
void utf8_append(std::string& out, uint32_t cp);

// Copy of s in which every byte that is not part of a well-formed sequence becomes U+FFFD.
std::string utf8_sanitize(std::string_view s);

}  // namespace dsv4::text

// The GPT-2 "ByteLevel" byte <-> code point table used by tokenizer.json vocabularies
// (spec §7.1): every byte gets a printable code point, so a space appears as 'Ġ' (U+0120)
// and a newline as 'Ċ' (U+010A) inside vocab and merge strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv4::text {

// Code point that stands for byte b in vocab strings.
uint32_t byte_to_codepoint(uint8_t b);

// Byte represented by code point cp, or nullopt when cp is not in the table.
std::optional<uint8_t> codepoint_to_byte(uint32_t cp);

// Converts a vocab string (UTF-8 of table code points) back to raw bytes. nullopt when the
// string is not valid UTF-8 or holds a code point outside the table.
std::optional<std::string> byte_level_decode(std::string_view vocab_string);

// The inverse: raw bytes -> vocab string.
std::string byte_level_encode(std::string_view bytes);

}  // namespace dsv4::text

// The GPT-2 "ByteLevel" alphabet of tokenizer.json vocabularies (spec §7.1): every byte gets a
// printable code point, so a space appears as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A) inside
// vocab and merge strings. Here those strings are read back to the bytes they stand for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv4::text {

// Byte represented by code point cp, or nullopt when cp is not in the table.
std::optional<uint8_t> codepoint_to_byte(uint32_t cp);

// Converts a vocab string (UTF-8 of table code points) back to raw bytes. nullopt when the
// string is not valid UTF-8 or holds a code point outside the table.
std::optional<std::string> byte_level_decode(std::string_view vocab_string);

}  // namespace dsv4::text

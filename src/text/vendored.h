// Where the vendored official DeepSeek-V4 tokenizer lives in the repository
// (data/tokenizer/tokenizer.json + tokenizer_config.json, provenance and sha256 in
// data/tokenizer/SOURCES.md). Lets dsv4 tokenize with no network and no model directory.
#pragma once

#include <string>

namespace dsv4::text {

// Absolute path of data/tokenizer in the source tree (from the DSV4_SOURCE_DIR definition).
std::string vendored_tokenizer_dir();

}  // namespace dsv4::text

// Where tests find shared reference material and the built CLI.
#pragma once
#include <string>

namespace dsv4::test {
inline std::string shared_dir() { return DSV4_SHARED_DIR; }
inline std::string fixture_dir(const std::string& name) { return shared_dir() + "/fixtures/" + name; }
inline std::string source_dir() { return DSV4_SOURCE_DIR; }
inline std::string demo_model_dir() { return source_dir() + "/models/dsv4-demo"; }
inline std::string vendored_tokenizer_dir() { return source_dir() + "/data/tokenizer"; }
inline std::string cli_path() { return DSV4_CLI_PATH; }
}  // namespace dsv4::test

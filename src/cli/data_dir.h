// Where the dsv4 binary finds the data it ships with (the vendored official tokenizer, the demo
// model): a data root found relative to the executable, so that a binary works from its build
// tree and from an install prefix alike, wherever either is moved (no path is compiled in).
#pragma once

#include <string>

#include "core/status.h"
#include "text/tokenizer.h"

namespace dsv4::cli {

// The data root, first of:
//   $DSV4_DATA_DIR, if set (must exist);
//   <directory of the executable>/share/dsv4        (the build tree: CMake links it there);
//   <directory of the executable>/../share/dsv4     (an install: <prefix>/bin/dsv4, <prefix>/share/dsv4).
// It holds tokenizer/ and models/dsv4-demo/. An error names every place looked at.
Result<std::string> data_dir();

// <data root>/tokenizer: the official V4 tokenizer, used when a model directory has none.
Result<std::string> vendored_tokenizer_dir();

// <data root>/models/dsv4-demo: the model `run`, `chat` and `serve` use without -m.
Result<std::string> demo_model_dir();

// The tokenizer a command uses: tokenizer_file if given, else model_dir/tokenizer.json if there is
// one, else the vendored official tokenizer.
Result<text::Tokenizer> load_cli_tokenizer(const std::string& tokenizer_file, const std::string& model_dir);

}  // namespace dsv4::cli

// JSON Lines driver shared by the batch text commands (tokenize, render, parse-completion):
// one JSON object per input line -> one JSON object per output line, in order. A line that
// fails produces {"error": "..."} (and a message on stderr) and processing continues; the
// exit status is 1 when any line failed.
#pragma once

#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace dsv4::cli {

// Dumps JSON on one line; invalid UTF-8 in strings becomes U+FFFD instead of throwing.
inline std::string json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

inline int run_jsonl(const char* command, const std::function<Result<nlohmann::ordered_json>(const nlohmann::ordered_json&)>& handle) {
  std::ios::sync_with_stdio(false);
  std::string line;
  size_t lineno = 0, failed = 0;
  while (std::getline(std::cin, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Result<nlohmann::ordered_json> out = Status::invalid_argument("empty line");
    if (line.find_first_not_of(" \t") != std::string::npos) {
      auto in = nlohmann::ordered_json::parse(line, nullptr, false);
      if (in.is_discarded()) out = Status::invalid_argument("line is not valid JSON");
      else if (!in.is_object()) out = Status::invalid_argument("line is not a JSON object");
      else out = handle(in);
    }
    if (out.ok()) {
      std::cout << json_line(*out) << '\n';
    } else {
      ++failed;
      const std::string msg = out.status().to_string();
      std::cout << json_line(nlohmann::ordered_json{{"error", msg}}) << '\n';
      std::cerr << "dsv4 " << command << ": line " << lineno << ": " << msg << '\n';
    }
    std::cout.flush();
  }
  return failed ? 1 : 0;
}

}  // namespace dsv4::cli

// API-key authentication (--api-key / --api-key-file), sent as "Authorization: Bearer KEY" or
// (Anthropic clients) "x-api-key: KEY", and the key id written to the audit log: the first 16
// hex digits of SHA-256(key), so the log never holds a key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace dsv4::server {

class ApiKeys {
 public:
  ApiKeys() = default;
  explicit ApiKeys(std::vector<std::string> keys);
  // One key per line; blank lines and lines starting with '#' are skipped.
  static Result<ApiKeys> from_file(const std::string& path);

  bool enabled() const { return !keys_.empty(); }
  // The key id of the key in an "Authorization: Bearer KEY" header value, or nullopt when it
  // is missing or wrong. Comparison takes the same time wherever the keys differ.
  std::optional<std::string> check(std::string_view authorization_header) const;
  // The same for a bare key (Anthropic's "x-api-key: KEY" header).
  std::optional<std::string> check_key(std::string_view key) const;

  void add(std::string key) { keys_.push_back(std::move(key)); }

 private:
  std::vector<std::string> keys_;
};

std::string key_id(std::string_view key);

}  // namespace dsv4::server

#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

namespace dsv4::server {

ApiKeys::ApiKeys(std::vector<std::string> keys) {
  for (auto& k : keys)
    if (!k.empty()) keys_.push_back(std::move(k));
}

Result<ApiKeys> ApiKeys::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io_error(path + ": cannot read the API key file");
  ApiKeys keys;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    keys.add(line.substr(b));
  }
  if (!keys.enabled()) return Status::invalid_argument(path + ": the API key file holds no key");
  return keys;
}

std::optional<std::string> ApiKeys::check(std::string_view header) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) return std::nullopt;
  return check_key(header.substr(kBearer.size()));
}

std::optional<std::string> ApiKeys::check_key(std::string_view given) const {
  if (given.empty()) return std::nullopt;
  bool match = false;
  for (const auto& k : keys_) {
    if (k.size() == given.size() && CRYPTO_memcmp(k.data(), given.data(), k.size()) == 0) match = true;
  }
  if (!match) return std::nullopt;
  return key_id(given);
}

std::string key_id(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace dsv4::server

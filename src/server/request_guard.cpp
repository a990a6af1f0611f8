#include "server/request_guard.h"

#include <algorithm>
#include <cctype>

namespace dsv4::server {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string normalize_host(std::string_view host) {
  std::string h = lower(trim(host));
  if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
  const size_t colons = size_t(std::count(h.begin(), h.end(), ':'));
  if (colons == 1) return h.substr(0, h.find(':'));   // name:port or a.b.c.d:port
  if (colons == 0) return h;
  // An IPv6 literal without brackets, as a socket address reads.
  constexpr std::string_view kMapped = "::ffff:";
  if (h.rfind(kMapped, 0) == 0 && h.find('.') != std::string::npos) return h.substr(kMapped.size());
  return "[" + h + "]";
}

std::vector<std::string> allowed_host_names(std::string_view bound_host, const std::vector<std::string>& extra) {
  std::vector<std::string> out = {"localhost", "127.0.0.1", "[::1]"};
  const std::string bound = normalize_host(bound_host);
  if (!bound.empty() && bound != "0.0.0.0" && bound != "[::]") out.push_back(bound);
  for (const std::string& e : extra) out.push_back(normalize_host(e));
  return out;
}

std::optional<Refusal> check_host(std::string_view host_header, std::string_view local_addr,
                                  const std::vector<std::string>& allowed) {
  if (host_header.empty()) return std::nullopt;
  const std::string host = normalize_host(host_header);
  if (std::find(allowed.begin(), allowed.end(), host) != allowed.end()) return std::nullopt;
  if (!local_addr.empty() && host == normalize_host(local_addr)) return std::nullopt;
  return Refusal{403,
                 "the Host '" + std::string(host_header) +
                     "' is not one this server answers to; start it with --allowed-host " + host +
                     " if clients reach it by that name",
                 "permission_error", "host_not_allowed"};
}

std::optional<Refusal> check_origin(std::string_view origin, const std::vector<std::string>& cors_origins) {
  if (origin.empty()) return std::nullopt;
  const std::string o = lower(trim(origin));
  for (const std::string& allowed : cors_origins) {
    std::string a = lower(trim(allowed));
    while (!a.empty() && a.back() == '/') a.pop_back();
    if (a == o) return std::nullopt;
  }
  return Refusal{403,
                 "requests from web pages (Origin '" + std::string(origin) +
                     "') are refused; start the server with --cors-origin " + std::string(origin) +
                     " to allow that site",
                 "permission_error", "origin_not_allowed"};
}

Refusal body_too_large(uint64_t max_body_bytes) {
  return {413,
          "the request body is larger than the server accepts (" + std::to_string(max_body_bytes) +
              " bytes: --max-body-bytes)",
          "invalid_request_error", "request_too_large"};
}

std::optional<Refusal> check_body_headers(const BodyHeaders& h, uint64_t max_body_bytes) {
  auto bad = [](std::string m) { return Refusal{400, std::move(m), "invalid_request_error", "invalid_request"}; };
  if (h.transfer_encoding) {
    if (lower(trim(*h.transfer_encoding)) != "chunked")
      return Refusal{501, "Transfer-Encoding '" + std::string(*h.transfer_encoding) + "' is not supported (only chunked)",
                     "invalid_request_error", "unsupported_transfer_encoding"};
    if (h.content_length_count > 0) return bad("a request must not have both Content-Length and Transfer-Encoding");
  }
  uint64_t length = 0;
  if (h.content_length_count > 1) return bad("a request must have at most one Content-Length header");
  if (h.content_length_count == 1) {
    const std::string_view v = trim(h.content_length);
    // Digits only: strtoull would take "-1" for 2^64 - 1 (a 413 instead of this 400).
    if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad("'Content-Length: " + std::string(h.content_length) + "' is not a valid length");
    for (char c : v) length = length * 10 + uint64_t(c - '0');
  }
  if (h.method != "POST") {
    if (h.transfer_encoding || length > 0) return bad(std::string(h.method) + " requests must not carry a body");
    return std::nullopt;
  }
  if (!h.transfer_encoding && h.content_length_count == 0)
    return Refusal{411, "a POST needs a Content-Length (or chunked Transfer-Encoding)", "invalid_request_error",
                   "length_required"};
  if (length > max_body_bytes) return body_too_large(max_body_bytes);
  const std::string_view media = trim(h.content_type.substr(0, h.content_type.find(';')));
  if (lower(media) != "application/json")
    return Refusal{415,
                   "the request body must be JSON, sent with 'Content-Type: application/json' (got '" +
                       std::string(h.content_type) + "')",
                   "invalid_request_error", "unsupported_media_type"};
  return std::nullopt;
}

}  // namespace dsv4::server

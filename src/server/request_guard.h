// The checks a request passes before its body is read or its route runs (issue #15): the Host it
// names (DNS rebinding), the browser Origin it comes from (cross-site requests), the framing of
// its body (so that the body limit holds however the body is sent, and nothing is left unread
// to be taken for the next request) and its media type (a web page can POST a form or
// text/plain anywhere without asking; application/json needs the page to be allowed by CORS).
// Pure functions over header values; http_server.cpp applies them to every request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4::server {

// Why a request is refused: the HTTP status, the message for the client, and the OpenAI error
// type and code (the Anthropic error type follows from the status).
struct Refusal {
  int http_status;
  std::string message;
  const char* type;
  const char* code;
};

// A host as the checks compare it: lowercased, without a port, IPv6 literals in brackets, an
// IPv4-mapped IPv6 address as its IPv4 form ("Example.COM:8000" -> "example.com", "::1" ->
// "[::1]", "[::1]:80" -> "[::1]", "::ffff:10.0.0.2" -> "10.0.0.2").
std::string normalize_host(std::string_view host);

// The hosts a Host header may name: localhost, 127.0.0.1, [::1], the bound address (unless it is
// a wildcard: 0.0.0.0, ::) and `extra` (--allowed-host), normalized.
std::vector<std::string> allowed_host_names(std::string_view bound_host, const std::vector<std::string>& extra);

// nullopt when the Host header names one of `allowed`, or the address the client connected to
// (`local_addr`: naming the server by the IP it was reached at is no rebinding). A request
// without Host (HTTP/1.0) passes: browsers always send one. 403 otherwise.
std::optional<Refusal> check_host(std::string_view host_header, std::string_view local_addr,
                                  const std::vector<std::string>& allowed);

// nullopt without an Origin header, or when it is one of `cors_origins` (scheme://host[:port],
// compared without case and trailing '/'). Browsers send Origin with cross-site requests (and
// with every POST); a server that serves no pages has no same-site ones. 403 otherwise.
std::optional<Refusal> check_origin(std::string_view origin, const std::vector<std::string>& cors_origins);

// The headers that say whether and how a request carries a body.
struct BodyHeaders {
  std::string_view method;
  size_t content_length_count = 0;      // Content-Length headers sent
  std::string_view content_length;      // the first one's value
  std::optional<std::string_view> transfer_encoding;
  std::string_view content_type;
};

// Only POST carries a body, framed by one well-formed Content-Length of at most `max_body_bytes`
// (413 beyond; 400 if negative or malformed) or by chunked Transfer-Encoding (whose length the
// reader caps as it reads), never both; its media type must be application/json (415).
std::optional<Refusal> check_body_headers(const BodyHeaders& h, uint64_t max_body_bytes);

// The refusal for a body found to exceed `max_body_bytes` while it was read.
Refusal body_too_large(uint64_t max_body_bytes);

}  // namespace dsv4::server

// One table from Status codes to HTTP statuses, and the error bodies of both APIs:
//   OpenAI     {"error": {"message": ..., "type": ..., "param": null, "code": ...}}
//   Anthropic  {"type": "error", "error": {"type": ..., "message": ...}}
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace dsv4::server {

// Which API's conventions a response follows (error shape, SSE keep-alives).
enum class ApiStyle { openai, anthropic };
// /v1/messages and everything below it speak Anthropic's Messages API; the rest OpenAI's.
ApiStyle api_style_for_path(std::string_view path);

struct HttpError {
  int http_status;
  const char* type;  // OpenAI error type
  const char* code;  // OpenAI error code (may be empty)
};

HttpError http_error_for(StatusCode code);
// The JSON body for a failed Status.
std::string error_body(const Status& status);
std::string error_body(ApiStyle style, const Status& status);
// The JSON body for an error that has no Status (401, 404 route, 413). The OpenAI type and
// code are given; the Anthropic type follows from the HTTP status.
std::string error_body(const std::string& message, const char* type, const char* code);
std::string error_body(ApiStyle style, int http_status, const std::string& message, const char* type,
                       const char* code);

// Anthropic's error type for an HTTP status: invalid_request_error (400), authentication_error
// (401), permission_error (403), not_found_error (404), request_too_large (413),
// rate_limit_error (429), api_error (5xx and anything else).
const char* anthropic_error_type(int http_status);
std::string anthropic_error_body(int http_status, const std::string& message);

}  // namespace dsv4::server

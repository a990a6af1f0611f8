// One table from Status codes to HTTP statuses, and OpenAI's error body:
//   {"error": {"message": ..., "type": ..., "param": null, "code": ...}}
#pragma once

#include <string>

#include "core/status.h"

namespace dsv4::server {

struct HttpError {
  int http_status;
  const char* type;  // OpenAI error type
  const char* code;  // OpenAI error code (may be empty)
};

HttpError http_error_for(StatusCode code);
// The JSON body for a failed Status.
std::string error_body(const Status& status);
// The JSON body for an error that has no Status (401, 404 route, 413).
std::string error_body(const std::string& message, const char* type, const char* code);

}  // namespace dsv4::server

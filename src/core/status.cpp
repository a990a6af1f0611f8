#include "core/status.h"

namespace dsv4 {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::not_found: return "not_found";
    case StatusCode::corrupt_data: return "corrupt_data";
    case StatusCode::unsupported: return "unsupported";
    case StatusCode::out_of_range: return "out_of_range";
    case StatusCode::resource_exhausted: return "resource_exhausted";
    case StatusCode::io_error: return "io_error";
    case StatusCode::internal: return "internal";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

void check_failed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "dsv4: internal check failed at %s:%d: %s\n", file, line, expr);
  std::abort();
}

}  // namespace dsv4

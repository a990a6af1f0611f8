#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace dsv4::server {

HttpError http_error_for(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return {200, "", ""};
    case StatusCode::invalid_argument: return {400, "invalid_request_error", "invalid_request"};
    case StatusCode::out_of_range: return {400, "invalid_request_error", "context_length_exceeded"};
    case StatusCode::unsupported: return {400, "invalid_request_error", "unsupported"};
    case StatusCode::not_found: return {404, "invalid_request_error", "model_not_found"};
    case StatusCode::resource_exhausted: return {429, "rate_limit_error", "server_busy"};
    case StatusCode::corrupt_data: return {500, "server_error", "internal_error"};
    case StatusCode::io_error: return {500, "server_error", "internal_error"};
    case StatusCode::internal: return {500, "server_error", "internal_error"};
  }
  return {500, "server_error", "internal_error"};
}

std::string error_body(const std::string& message, const char* type, const char* code) {
  nlohmann::json e = {{"message", message}, {"type", type}, {"param", nullptr}};
  e["code"] = (code && *code) ? nlohmann::json(code) : nlohmann::json(nullptr);
  return nlohmann::json({{"error", e}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string error_body(const Status& status) {
  const HttpError h = http_error_for(status.code());
  return error_body(status.message(), h.type, h.code);
}

}  // namespace dsv4::server

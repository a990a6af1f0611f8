#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace dsv4::server {

namespace {
std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }
}  // namespace

ApiStyle api_style_for_path(std::string_view path) {
  constexpr std::string_view kMessages = "/v1/messages";
  const bool anthropic = path.substr(0, kMessages.size()) == kMessages &&
                         (path.size() == kMessages.size() || path[kMessages.size()] == '/');
  return anthropic ? ApiStyle::anthropic : ApiStyle::openai;
}

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
  return dump({{"error", e}});
}

std::string error_body(const Status& status) {
  const HttpError h = http_error_for(status.code());
  return error_body(status.message(), h.type, h.code);
}

std::string error_body(ApiStyle style, const Status& status) {
  if (style == ApiStyle::openai) return error_body(status);
  return anthropic_error_body(http_error_for(status.code()).http_status, status.message());
}

std::string error_body(ApiStyle style, int http_status, const std::string& message, const char* type,
                       const char* code) {
  if (style == ApiStyle::openai) return error_body(message, type, code);
  return anthropic_error_body(http_status, message);
}

const char* anthropic_error_type(int http_status) {
  switch (http_status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    default: return "api_error";
  }
}

std::string anthropic_error_body(int http_status, const std::string& message) {
  return dump({{"type", "error"}, {"error", {{"type", anthropic_error_type(http_status)}, {"message", message}}}});
}

}  // namespace dsv4::server

#include "server/sse.h"

#include "core/status.h"

namespace dsv4::server {

std::string sse_data(std::string_view payload) {
  DSV4_CHECK(payload.find('\n') == std::string_view::npos);
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
  return out;
}

std::string sse_event(std::string_view name, std::string_view payload) {
  DSV4_CHECK(name.find('\n') == std::string_view::npos);
  std::string out = "event: ";
  out += name;
  out += "\n";
  out += sse_data(payload);
  return out;
}

}  // namespace dsv4::server

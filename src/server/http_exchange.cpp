#include "server/http_exchange.h"

#include <algorithm>
#include <cctype>

namespace dsv4::server {

namespace {
bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const HttpHeader& h : headers)
    if (same_name(h.name, name)) return h.value;
  return {};
}

bool HttpRequest::has_header(std::string_view name) const { return header_count(name) > 0; }

size_t HttpRequest::header_count(std::string_view name) const {
  return size_t(std::count_if(headers.begin(), headers.end(), [&](const HttpHeader& h) { return same_name(h.name, name); }));
}

}  // namespace dsv4::server

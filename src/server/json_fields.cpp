#include "server/json_fields.h"

#include <cmath>

#include "server/api.h"

namespace dsv4::server {

using json = nlohmann::ordered_json;

namespace {
Status bad(const std::string& m) { return Status::invalid_argument(m); }
std::string quoted(const char* key) { return std::string("'") + key + "'"; }
}  // namespace

Result<json> parse_json_object(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("the request body is not valid JSON");
  if (!j.is_object()) return bad("the request body must be a JSON object");
  return j;
}

Status read_number(const json& j, const char* key, float& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_number()) return bad(quoted(key) + " must be a number");
  out = it->get<float>();
  return {};
}

Status read_int(const json& j, const char* key, int64_t& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::floor(d) != d) return bad(quoted(key) + " must be an integer");
    out = int64_t(d);
    return {};
  }
  if (!it->is_number_integer()) return bad(quoted(key) + " must be an integer");
  out = it->get<int64_t>();
  return {};
}

Status read_bool(const json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_boolean()) return bad(quoted(key) + " must be a boolean");
  out = it->get<bool>();
  return {};
}

Status read_string(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) return bad(quoted(key) + " must be a string");
  out = it->get<std::string>();
  return {};
}

Status read_stop_strings(const json& j, const char* key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  const std::string what = quoted(key) + " must be a string or an array of strings";
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& e : *it) {
      if (!e.is_string()) return bad(what);
      out.push_back(e.get<std::string>());
    }
  } else {
    return bad(what);
  }
  if (out.size() > kMaxStopStrings) return bad(quoted(key) + " may hold at most " + std::to_string(kMaxStopStrings) + " strings");
  for (const auto& s : out)
    if (s.empty()) return bad(quoted(key) + " strings must not be empty");
  return {};
}

Status check_effort(std::string_view field, std::string_view effort, text::EncoderRevision revision,
                    std::string_view also) {
  if (text::effort_prefix(revision, effort).ok()) return {};
  std::string allowed = also.empty() ? std::string() : std::string(also) + ", ";
  allowed += text::effort_level_names(revision);
  return bad("'" + std::string(field) + "' must be one of " + allowed + " for the served model (its " +
             std::string(text::encoder_revision_name(revision)) + " chat encoder), not '" + std::string(effort) + "'");
}

}  // namespace dsv4::server

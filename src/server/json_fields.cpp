#include "server/json_fields.h"

#include <cmath>

#include "server/api.h"

namespace dsv4::server {

using json = nlohmann::ordered_json;

namespace {
Status bad(const std::string& m) { return Status::invalid_argument(m); }
std::string quoted(const char* key) { return std::string("'") + key + "'"; }
}  // namespace

namespace {
// A SAX reader that only counts nesting, and stops at the first level past the limit.
class DepthProbe final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit DepthProbe(int max_depth) : max_depth_(max_depth) {}
  bool too_deep() const { return too_deep_; }

  bool start_object(std::size_t) override { return enter(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool key(string_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) override { return false; }

 private:
  bool enter() {
    too_deep_ = ++depth_ > max_depth_;
    return !too_deep_;
  }
  bool leave() {
    --depth_;
    return true;
  }
  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
};
}  // namespace

bool json_nests_deeper_than(std::string_view text, int max_depth) {
  DepthProbe probe(max_depth);
  nlohmann::json::sax_parse(text.begin(), text.end(), &probe, nlohmann::json::input_format_t::json,
                            /*strict=*/true);
  return probe.too_deep();
}

Result<json> parse_json_object(std::string_view body) {
  if (json_nests_deeper_than(body, kMaxJsonDepth))
    return bad("the request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
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

Status check_known_fields(const json& j, std::initializer_list<std::string_view> known, ApiWording wording) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok |= it.key() == k;
    if (ok) continue;
    if (wording == ApiWording::anthropic) return bad(it.key() + ": Extra inputs are not permitted");
    return bad("Unrecognized request argument supplied: " + it.key());
  }
  return {};
}

namespace {

Status check_metadata(const json& m) {
  if (!m.is_object()) return bad("'metadata' must be an object of strings");
  if (m.size() > 16) return bad("'metadata' may hold at most 16 keys");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it.key().size() > 64) return bad("'metadata' keys may be at most 64 characters");
    if (!it.value().is_string()) return bad("'metadata." + it.key() + "' must be a string");
    if (it.value().get_ref<const std::string&>().size() > 512)
      return bad("'metadata." + it.key() + "' may be at most 512 characters");
  }
  return {};
}

}  // namespace

Status check_bookkeeping(const json& j) {
  if (auto it = j.find("metadata"); it != j.end() && !it->is_null()) DSV4_TRY(check_metadata(*it));
  bool store = false;
  DSV4_TRY(read_bool(j, "store", store));
  std::string ignored;
  for (const char* key : {"service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier"})
    DSV4_TRY(read_string(j, key, ignored));
  return {};
}

bool valid_tool_name(std::string_view n) {
  return !n.empty() && n.size() <= 128 && n.find_first_of("\"<>\n\r") == std::string_view::npos;
}

Result<std::string> effort_level(std::string_view field, std::string_view requested, text::EncoderRevision revision,
                                 std::string_view also) {
  if (requested.empty()) return std::string();
  if (auto level = text::api_effort_level(revision, requested); level.ok()) return std::string(*level);
  std::string allowed = also.empty() ? std::string() : std::string(also) + ", ";
  allowed += text::api_effort_names(revision);
  return bad("'" + std::string(field) + "' must be one of " + allowed + " (the served model's " +
             std::string(text::encoder_revision_name(revision)) + " chat encoder has the levels " +
             text::effort_level_names(revision) + "), not '" + std::string(requested) + "'");
}

Status read_openai_effort(std::string_view field, std::string_view requested, text::EncoderRevision revision,
                          text::Thinking& thinking) {
  if (requested == "none") {
    thinking.mode = text::ThinkingMode::chat;
    return {};
  }
  DSV4_ASSIGN_OR_RETURN(thinking.effort, effort_level(field, requested, revision, "none"));
  thinking.mode = text::ThinkingMode::thinking;
  return {};
}

Result<std::vector<std::string>> text_parts(const json& content, const std::string& where, std::string_view parts,
                                            const PartReader& read_part) {
  if (content.is_string()) return std::vector<std::string>{content.get<std::string>()};
  if (!content.is_array()) return bad("'" + where + "' must be a string or an array of " + std::string(parts));
  std::vector<std::string> out;
  for (size_t i = 0; i < content.size(); ++i) {
    DSV4_ASSIGN_OR_RETURN(std::string text, read_part(content[i], where + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(text));
  }
  return out;
}

std::string join_text_parts(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "\n\n" : "") + parts[i];
  return out;
}

}  // namespace dsv4::server

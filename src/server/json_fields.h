// Typed readers for request JSON, shared by the request parsers of the three APIs (openai.cpp,
// anthropic.cpp, responses.cpp). Each validates one field and names it in its error: absent or
// null leaves `out` unchanged; a value of the wrong type is invalid_argument.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "text/encoder_revision.h"
#include "text/thinking.h"

namespace dsv4::server {

// Deepest nesting of arrays and objects a request may hold. nlohmann::json parses iteratively,
// but copies, dumps and the chat renderer recurse: a body nested 50,000 deep overflowed the
// stack and killed the server (issue #15). Real tool schemas stay well under 20 levels.
inline constexpr int kMaxJsonDepth = 128;

// True when `text` holds arrays/objects nested deeper than `max_depth` (a syntax error is not
// reported here: false). Reads without building anything.
bool json_nests_deeper_than(std::string_view text, int max_depth);

// The body as a JSON object (keys kept in request order), or invalid_argument: not JSON, not an
// object, or nested deeper than kMaxJsonDepth (checked before anything is built). Every request
// body goes through here.
Result<nlohmann::ordered_json> parse_json_object(std::string_view body);

Status read_number(const nlohmann::ordered_json& j, const char* key, float& out);
Status read_int(const nlohmann::ordered_json& j, const char* key, int64_t& out);  // 3.0 counts as 3
Status read_bool(const nlohmann::ordered_json& j, const char* key, bool& out);
Status read_string(const nlohmann::ordered_json& j, const char* key, std::string& out);
// A string or an array of strings (at most kMaxStopStrings, none empty).
Status read_stop_strings(const nlohmann::ordered_json& j, const char* key, std::vector<std::string>& out);

// The top-level fields an endpoint accepts. Any other is refused as the official APIs refuse it
// (OpenAI: "Unrecognized request argument supplied: X"; Anthropic: "X: Extra inputs are not
// permitted"), so no field a client sends is silently ignored. The lists mirror the official
// APIs' fields (plus this server's extensions): a client written for them never meets a refusal
// for a field those APIs accept, only the clear 400 of a feature this server lacks.
enum class ApiWording { openai, anthropic };
Status check_known_fields(const nlohmann::ordered_json& j, std::initializer_list<std::string_view> known,
                          ApiWording wording);

// OpenAI's fields for hosted-service bookkeeping: `metadata` (at most 16 string values, keys
// <= 64 and values <= 512 characters), `store`, `service_tier`, `prompt_cache_key`,
// `prompt_cache_retention`, `safety_identifier`. Accepted for compatibility and checked for
// type; they change nothing here (the prefix cache needs no key; /v1/responses reads `store`
// itself).
Status check_bookkeeping(const nlohmann::ordered_json& j);

// Message text as every API sends it: a string, or an array of parts, each read (and checked)
// by `read_part`, which names it by `where[i]`. A string is one part. Anything else is refused
// as "'<where>' must be a string or an array of <parts>".
using PartReader = std::function<Result<std::string>(const nlohmann::ordered_json& part, const std::string& where)>;
Result<std::vector<std::string>> text_parts(const nlohmann::ordered_json& content, const std::string& where,
                                            std::string_view parts, const PartReader& read_part);
// The parts of one message's text joined as the chat encoder joins an OpenAI message's text
// parts: by a blank line (text/chat_encoding.h: messages_from_json).
std::string join_text_parts(const std::vector<std::string>& parts);

// A tool name the chat renderer can take: names go into the DSML invoke header verbatim, so
// they must not be able to end it (no quotes, '<', '>' or newlines; 1 to 128 bytes).
bool valid_tool_name(std::string_view name);

// A requested reasoning effort (an API name: minimal .. max; for V4.1 also "1" .. "100", v4.1
// §11.4) as the level of the served model's chat encoder that it selects (text::api_effort_level,
// DeepSeek's API mapping); "" stays "" (the encoder's default). Errors: invalid_argument naming
// `field`, the accepted names (`also` first: a value the caller handles itself, e.g. OpenAI's
// "none") and the encoder's levels.
Result<std::string> effort_level(std::string_view field, std::string_view requested, text::EncoderRevision revision,
                                 std::string_view also = {});

// OpenAI's effort (Chat Completions' reasoning_effort, Responses' reasoning.effort) into
// `thinking`: "none" turns thinking off (OpenAI's meaning) on every revision; any other name
// selects thinking at the level effort_level gives (its errors, "none" listed first).
Status read_openai_effort(std::string_view field, std::string_view requested, text::EncoderRevision revision,
                          text::Thinking& thinking);

}  // namespace dsv4::server

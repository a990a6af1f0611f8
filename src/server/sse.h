// Server-sent events framing for streamed responses. OpenAI: each event is one `data: <json>`
// line followed by a blank line, the stream ends with `data: [DONE]`, and `:` lines are
// comments that clients ignore (used as keep-alives). Anthropic: each event also has an
// `event: <type>` line, and keep-alives are `ping` events.
#pragma once

#include <string>
#include <string_view>

namespace dsv4::server {

// REQUIRES: payload has no newline (compact JSON never does).
std::string sse_data(std::string_view payload);
// A named event (Anthropic's stream format): "event: <name>\ndata: <payload>\n\n".
std::string sse_event(std::string_view name, std::string_view payload);
inline std::string sse_done() { return "data: [DONE]\n\n"; }
inline std::string sse_comment() { return ": keep-alive\n\n"; }

}  // namespace dsv4::server

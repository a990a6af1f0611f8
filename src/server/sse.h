// Server-sent events framing for streamed completions (the OpenAI wire format): each event is
// one `data: <json>` line followed by a blank line, the stream ends with `data: [DONE]`, and
// `:` lines are comments that clients ignore (used as keep-alives).
#pragma once

#include <string>
#include <string_view>

namespace dsv4::server {

// REQUIRES: payload has no newline (compact JSON never does).
std::string sse_data(std::string_view payload);
inline std::string sse_done() { return "data: [DONE]\n\n"; }
inline std::string sse_comment() { return ": keep-alive\n\n"; }

}  // namespace dsv4::server

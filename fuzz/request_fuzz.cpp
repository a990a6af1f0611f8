// libFuzzer target for the request parsers of the HTTP API (built and run by
// tests/scripts/fuzz_requests.sh): parse_chat_request (OpenAI), parse_messages_request
// (Anthropic, also as count_tokens) and parse_completion_request on the same body, for both
// chat encoder revisions. A request body is untrusted input: whatever it holds, a parser must
// return a parsed request or an error that maps to a 4xx answer, never crash, overflow its
// stack (nesting is limited, issue #15) or answer 5xx.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/anthropic.h"
#include "server/errors.h"
#include "server/openai.h"

namespace {

using namespace dsv4;

// An error must be the client's (4xx) and say what is wrong.
void check_error(const Status& st) {
  const int http = server::http_error_for(st.code()).http_status;
  if (http < 400 || http >= 500 || st.message().empty()) std::abort();
}

void check_chat(const Result<server::ChatRequest>& r) {
  if (!r.ok()) return check_error(r.status());
  if (r->messages.empty() || r->gen.stop.size() > server::kMaxStopStrings) std::abort();
  // The request's JSON the renderer still walks: tool schemas, and those of a system message.
  for (const auto& t : r->tools) (void)text::tool_schema_line(t);
  for (const auto& m : r->messages) {
    for (const auto& t : m.tools) (void)text::tool_schema_line(t);
    (void)m.response_format.dump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const auto revision : {text::EncoderRevision::v4, text::EncoderRevision::v4_flash_0731}) {
    check_chat(server::parse_chat_request(body, revision));
    check_chat(server::parse_messages_request(body, revision));
    check_chat(server::parse_messages_request(body, revision, /*count_tokens=*/true));
  }
  auto c = server::parse_completion_request(body);
  if (!c.ok()) check_error(c.status());
  return 0;
}

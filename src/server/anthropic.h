// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) over the chat path.
// A request becomes a ChatRequest in OpenAI shape, so rendering, tokenization, output steering
// and output parsing are exactly those of /v1/chat/completions; the model's output (ChatDelta
// pieces) becomes Messages content blocks, for a whole message or as stream events.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/text_codec.h"

namespace dsv4::server {

// Parse + validate a Messages request. Conversions:
//   system (string or text blocks)            -> a leading system message
//   a system message inside `messages`        -> a system message where it stands
//   user text / tool_result blocks            -> user / tool messages (tool_use_id -> tool_call_id)
//   assistant text / thinking / tool_use      -> content / reasoning_content / tool_calls
//   a last assistant message (prefill)        -> continued as the start of the answer, in
//                                                non-thinking mode
//   tools {name, description, input_schema}   -> function tools
//   tool_choice auto / any / tool / none      -> auto / required / named / none
//   thinking {type: enabled | adaptive | disabled, budget_tokens}, output_config.effort
//                                             -> thinking mode (only when enabled or adaptive,
//                                                Anthropic's default), thinking budget, and the reasoning
//                                                effort: a level of `revision`, the served model's
//                                                chat encoder (others are refused)
//   stop_sequences, temperature, top_p, top_k, metadata.user_id, stream
// max_tokens is required except for count_tokens. Errors are invalid_argument naming the field
// ("'messages[1].content[0].type' ..."); images, documents and server tools are rejected.
Result<ChatRequest> parse_messages_request(std::string_view body, text::EncoderRevision revision,
                                          bool count_tokens = false);

// "end_turn", "max_tokens", "stop_sequence" or "tool_use"; empty for a failed generation.
std::string messages_stop_reason(runtime::FinishReason finish, bool stop_sequence, bool tool_use);

// Messages usage. input_tokens excludes the prompt tokens reused from the prefix cache, which
// are cache_read_input_tokens (Anthropic's accounting: the three input counts add up).
nlohmann::json messages_usage(int64_t prompt_tokens, int64_t cached_tokens, int64_t output_tokens);

// Model output -> content blocks: thinking (reasoning), text (content) and tool_use (one per
// tool call), in the order the output produced them. Both response shapes come from the same
// calls: push() and finish() return the stream events (content_block_start / _delta / _stop)
// and build content(), the blocks of the whole message, alongside.
class MessageBlocks {
 public:
  std::vector<nlohmann::json> push(const ChatDelta& d);
  // Closes the open block. An output with no block at all gets one empty text block.
  std::vector<nlohmann::json> finish();
  const nlohmann::json& content() const { return content_; }

 private:
  enum class Kind { none, thinking, text, tool_use };
  void open(Kind kind, nlohmann::json block, std::vector<nlohmann::json>& events);
  void close(std::vector<nlohmann::json>& events);
  void delta(nlohmann::json d, std::vector<nlohmann::json>& events);

  Kind open_ = Kind::none;
  std::string tool_input_;  // the open tool_use block's input JSON so far
  nlohmann::json content_ = nlohmann::json::array();
};

// A whole Messages response: {"id", "type": "message", "role": "assistant", "content", "model",
// "stop_reason", "stop_sequence", "usage"}.
nlohmann::json message_json(const std::string& id, const std::string& model, const nlohmann::json& content,
                            const std::string& stop_reason, const std::string& stop_sequence,
                            const nlohmann::json& usage);

// One stream event as SSE: "event: <its type>\ndata: <json>\n\n".
std::string messages_sse(const nlohmann::json& event);

}  // namespace dsv4::server

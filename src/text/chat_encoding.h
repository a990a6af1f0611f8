// Chat rendering: OpenAI-style messages -> the exact prompt text of DeepSeek's official V4
// encoder (`encode_messages`, spec §7.2-7.3, PROMPT-FORMAT.md), or of V4.1's (v4.1 §11.2-11.3),
// by ChatOptions::revision. Tokenize the returned string with Tokenizer::encode (added-token
// strings become their ids; no BOS is added there).
//
// Public API:
//   Result<std::vector<ChatMessage>> messages_from_json(const nlohmann::ordered_json& array);
//   Result<ChatOptions> options_from_json(const nlohmann::ordered_json& object);
//   Result<std::string> render_chat(const std::vector<ChatMessage>&, const ChatOptions&);
// Parse request JSON with nlohmann::ordered_json: tool schemas are rendered with their keys in
// input order, as the official encoder (Python dicts) does. A plain nlohmann::json has already
// sorted the keys; the overload taking it is kept for convenience but changes key order.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "text/encoder_revision.h"
#include "text/thinking.h"
#include "text/tool_definition.h"

namespace dsv4::text {

struct ToolCall {
  std::string id;         // OpenAI call id (used to order tool results); may be empty
  std::string name;       // function name
  std::string arguments;  // JSON text of the arguments object, as OpenAI sends it
};

struct ChatMessage {
  // "system", "user", "assistant", "tool", "developer" or "latest_reminder".
  std::string role;
  std::string content;             // text; content-part arrays are flattened by messages_from_json
  // An image content part was flattened into `content` as "[Unsupported TYPE]", which is what
  // the V4 encoders write for it. The V4.1 encoder would write an image placeholder (v4.1 §11.5)
  // for the vision path, which dsv4 does not run: it refuses the message.
  bool has_image = false;
  std::string reasoning_content;   // assistant only
  std::vector<ToolCall> tool_calls;  // assistant only
  std::string tool_call_id;        // tool only: which call this result answers
  std::string name;                // optional participant / tool name (not rendered)
  std::vector<ToolDefinition> tools;  // system/developer: the tools it declares
  nlohmann::ordered_json response_format;  // system/developer: schema object, null = none
  // Quick-instruction task (PROMPT-FORMAT §6): "action", "query", "authority", "domain",
  // "read_url" on a user turn, "title" on an assistant turn. Empty = none.
  std::string task;
  // Prefix continuation ("wo_eos" / vLLM "prefix"): this assistant message is written without
  // its EOS, so generation continues it. Meant for the last message; ignored on other roles.
  bool prefix = false;
};

struct ChatOptions {
  // The mode, and the effort level thinking mode writes a prefix for (the budget is the
  // steering's, not rendered).
  Thinking thinking;
  // Drop reasoning of turns before the last user message (thinking mode). Has no effect when
  // any message carries tools: then all reasoning is kept, as the official encoder does.
  bool drop_thinking = true;
  // Request-level tools / response_format: attached to the leading system message (one with
  // empty content is inserted when there is none). Empty tools, and a null (or [] / {}:
  // Python-falsy) response_format, are none.
  std::vector<ToolDefinition> tools;
  nlohmann::ordered_json response_format;
  // Start with BOS (official add_default_bos_token). The reasoning-effort prefix does not
  // depend on it: it always opens the first message, as in the official encoder.
  bool add_bos = true;
  // The messages continue a conversation rendered before (the official encoder's `context`): none
  // of them is message 0, so nothing that opens a conversation is written (the effort prefix;
  // V4.1's leading <｜System｜>), and a V4.1 system message is a mid-conversation one.
  bool continuation = false;
  EncoderRevision revision = EncoderRevision::v4;
};

Result<std::vector<ChatMessage>> messages_from_json(const nlohmann::ordered_json& messages);
Result<std::vector<ChatMessage>> messages_from_json(const nlohmann::json& messages);
// Keys: thinking_mode ("chat"|"thinking"), reasoning_effort (string|integer|null: V4.1 takes
// 1-100), drop_thinking (bool), tools, response_format, add_bos (bool), continuation (bool),
// revision ("v4"|"v4-flash-0731"|"v4.1"). Without a revision key the options keep `revision`
// (that of the model being rendered for, if known).
Result<ChatOptions> options_from_json(const nlohmann::ordered_json& options,
                                      EncoderRevision revision = EncoderRevision::v4);

Result<std::string> render_chat(const std::vector<ChatMessage>& messages, const ChatOptions& options);

// The DSML block for one assistant turn's tool calls (no leading "\n\n"), as the revision's
// encoder writes it. Exposed for tests and for servers that echo tool calls.
std::string render_tool_calls(const std::vector<ToolCall>& calls, EncoderRevision revision);

}  // namespace dsv4::text

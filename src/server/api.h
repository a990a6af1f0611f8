// The request types the three HTTP APIs share. Each API's adapter (server/openai.cpp,
// server/anthropic.cpp, server/responses.cpp) turns a JSON body into one of these structs,
// validating every field it reads, before anything else sees it; the scheduler only ever
// receives token ids and typed options.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "runtime/sampler.h"
#include "text/chat_encoding.h"
#include "text/encoder_revision.h"
#include "text/output_steering.h"
#include "text/json_schema.h"
#include "text/thinking.h"
#include "text/tool_definition.h"

namespace dsv4::server {

// Prompt modes of DeepSeek-V4 (PROMPT-FORMAT.md §4): non-thinking and thinking (text/thinking.h).
using text::ThinkingMode;

// Generation options of every endpoint (the OpenAI names; the other APIs' readers fill the same
// fields).
struct GenerationOptions {
  std::string model;
  runtime::SamplingParams sampling;
  int64_t max_tokens = 0;               // max_tokens / max_completion_tokens; 0 = to the context
  std::vector<std::string> stop;        // up to kMaxStopStrings
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool logprobs = false;                // chat: logprobs; completions: logprobs (an integer)
  std::string user;                     // recorded in the audit log only
};

inline constexpr size_t kMaxStopStrings = 16;

using text::ToolChoice;

// Structured output (server/structured_output.h parses it from each API's field): the grammar
// the answer must follow, enforced token by token, and the format object the chat encoder shows
// the model (its "## Response Format" section).
struct StructuredOutput {
  std::shared_ptr<const text::JsonGrammar> grammar;  // null = free text
  nlohmann::ordered_json prompt_format;              // null = none
};

struct ChatRequest {
  GenerationOptions gen;
  // The conversation, converted and validated once by the API's parser; the text layer renders
  // it as it stands (PROMPT-FORMAT.md §2).
  std::vector<text::ChatMessage> messages;
  // The tools the model may call, read once from the API's own shape (strict ones carry their
  // arguments' grammar).
  std::vector<text::ToolDefinition> tools;
  ToolChoice tool_choice = ToolChoice::auto_;
  std::string tool_choice_name;         // ToolChoice::named
  // The mode, the effort (a level of the served model's encoder, mapped from the API's name)
  // and the thinking budget, whichever of the API's fields asked for them.
  text::Thinking thinking;
  // Render the reasoning of turns before the last user message too (the encoder drops it by
  // default in thinking mode): Anthropic's context_management clear_thinking with keep "all".
  bool keep_thinking = false;
  StructuredOutput output;
};

// The tool a named tool_choice names must be among the request's tools; `noun` is what the API
// calls one ("function", "tool") in the error.
Status check_tool_choice_name(const ChatRequest& r, std::string_view noun);

}  // namespace dsv4::server

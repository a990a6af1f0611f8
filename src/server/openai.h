// OpenAI's /v1/chat/completions and /v1/completions: their request bodies parsed into typed
// requests, and their response shapes (the model's output, as ChatDelta pieces or text, becomes
// a whole chat.completion / text_completion object or its stream chunks). Pure JSON, no HTTP:
// the handlers in http_server.cpp only move pieces between the scheduler and these.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/text_codec.h"
#include "text/encoder_revision.h"

namespace dsv4::server {

struct CompletionRequest {
  GenerationOptions gen;
  std::string prompt;                    // text prompt, or
  std::vector<int32_t> prompt_ids;       // a token-id prompt (OpenAI allows an array of ints)
  bool echo = false;
};

// Parse + validate. Errors are invalid_argument with the field named ("'messages[2].role' must
// be one of ..."); a body that is not JSON says so. `revision` is the served model's chat encoder:
// a reasoning_effort it has no level for is refused (see openai.cpp for the rule).
Result<ChatRequest> parse_chat_request(std::string_view body, text::EncoderRevision revision);
Result<CompletionRequest> parse_completion_request(std::string_view body);

// Usage of a finished generation; speculative decoding's drafts go in the fields OpenAI uses for
// predicted outputs.
nlohmann::json openai_usage(const runtime::GenerationEvent& finished);

// One chat completion. Both response shapes come from the same object: add() gathers pieces for
// response(); the stream_* calls give the SSE frames of a streamed one.
class ChatCompletion {
 public:
  // `reasoning`: the request thinks (its message carries reasoning_content); `logprobs`: the
  // request asked for them.
  ChatCompletion(std::string id, int64_t created, std::string model, bool reasoning, bool logprobs);

  void add(ChatDelta& piece);
  // The chat.completion object; `logprobs`: every token's entry.
  nlohmann::json response(const std::string& finish_reason, const nlohmann::json& logprobs,
                          const nlohmann::json& usage) const;

  // The first frame: the assistant role.
  std::string stream_start() const;
  // A frame for a piece's deltas and log-probabilities; empty when the piece holds neither.
  std::string stream_piece(const ChatDelta& piece, const nlohmann::json& logprobs) const;
  // The frame with the finish_reason, then the usage frame when `usage` is not null.
  std::string stream_end(const std::string& finish_reason, const nlohmann::json& usage) const;

 private:
  nlohmann::json chunk(nlohmann::json delta, nlohmann::json finish, nlohmann::json logprobs) const;

  std::string id_;
  int64_t created_;
  std::string model_;
  bool reasoning_;
  bool logprobs_;
  std::string content_, reasoning_text_;
  std::vector<ToolCallDelta> calls_;
};

// One (legacy) text completion: the whole text_completion object, or its stream frames.
class TextCompletion {
 public:
  TextCompletion(std::string id, int64_t created, std::string model, bool logprobs);

  // `logprobs`: every token's entry (chat-style; given in the completions shape).
  nlohmann::json response(const std::string& text, const std::string& finish_reason, const nlohmann::json& logprobs,
                          const nlohmann::json& usage) const;
  // A frame of new text (finish_reason null); `logprobs` the entries of its tokens (null: none,
  // as for an echoed prompt).
  std::string stream_piece(const std::string& text, const nlohmann::json& logprobs) const;
  // The frame with the finish_reason, then the usage frame when `usage` is not null.
  std::string stream_end(const std::string& finish_reason, const nlohmann::json& usage) const;

 private:
  nlohmann::json object(nlohmann::json choices) const;
  std::string frame(const std::string& text, nlohmann::json finish, nlohmann::json logprobs) const;
  nlohmann::json logprobs_json(const nlohmann::json& entries) const;

  std::string id_;
  int64_t created_;
  std::string model_;
  bool logprobs_;
};

// The frames that close a streamed completion of either shape: an error frame when the
// generation failed, else the completion's stream_end (the usage frame when `include_usage`),
// then [DONE].
template <class Completion>
std::string stream_finish(const Completion& completion, const runtime::GenerationEvent& finished,
                          const std::string& finish_reason, bool include_usage);

}  // namespace dsv4::server

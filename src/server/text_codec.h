// What the HTTP layer needs from the text layer, as one interface: chat rendering plus
// tokenization, UTF-8-safe streaming detokenization, and parsing of the model's output into
// reasoning / content / tool calls. The production implementation (make_text_codec, in
// text_codec.cpp) is built on dsv4::text; the seam lets the server tests run the whole HTTP
// stack on a small deterministic engine.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "runtime/token_constraint.h"
#include "server/api.h"
#include "text/output_stream.h"

namespace dsv4::server {

struct ToolCallDelta {
  int index = 0;
  std::string id;         // set on the first delta of a call
  std::string name;       // set on the first delta of a call
  std::string arguments;  // a piece of the JSON arguments text
};

struct ChatDelta {
  std::string reasoning;
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // The chat encoder revision of the served model: requests are parsed against its reasoning
  // effort levels and rendered with it.
  virtual text::EncoderRevision encoder_revision() const = 0;
  // The prompt ids of a chat request (BOS first), rendered in the request's thinking mode and
  // reasoning effort.
  virtual Result<std::vector<int32_t>> encode_chat(const ChatRequest& r) const = 0;
  // The offsets of a chat prompt (encode_chat's ids) where a message opens: the prefix
  // cache's snapshot points (runtime::GenerationRequest::message_starts).
  virtual std::vector<int64_t> message_starts(std::span<const int32_t> prompt) const = 0;
  // The prompt ids of a raw text prompt (BOS first; the text is tokenized as-is).
  virtual std::vector<int32_t> encode_text(std::string_view text) const = 0;
  virtual std::unique_ptr<text::TokenDecoder> new_token_decoder() const = 0;
  // The parser of a chat request's output, in its thinking mode.
  virtual std::unique_ptr<text::OutputParser> new_output_parser(const ChatRequest& r) const = 0;
  // The steering that enforces the request's tool_choice and thinking budget.
  virtual text::OutputSteering steering(const ChatRequest& r) const = 0;
  // The text of one token, for log-probabilities (may be a partial UTF-8 sequence).
  virtual std::string token_text(int32_t id) const = 0;
};

}  // namespace dsv4::server

namespace dsv4::server {

// The production codec: the model directory's tokenizer (or the official one in
// fallback_tokenizer_dir), the official V4 chat rendering in `revision` (the model's:
// text::encoder_revision_for), and the streaming completion parser of dsv4::text.
Result<std::unique_ptr<TextCodec>> make_text_codec(const std::string& model_dir,
                                                   const std::string& fallback_tokenizer_dir,
                                                   text::EncoderRevision revision);

}  // namespace dsv4::server

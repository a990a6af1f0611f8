// One generation seen from the HTTP side: scheduler events in, text and chat deltas out, for
// every API (chat completions, completions, Anthropic messages, Responses). The text itself
// (detokenizing, stop strings, completion parsing) is text::OutputStream, shared with the CLI;
// this adds what only the server needs: latency metrics, log-probabilities, tool-call ids,
// reasoning-token counts and the OpenAI finish_reason.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "server/metrics.h"
#include "server/text_codec.h"
#include "text/output_stream.h"

namespace dsv4::server {

// Parser events -> chat deltas; a started tool call gets a new id ("call_" + 16 hex digits).
ChatDelta chat_delta(const std::vector<text::CompletionEvent>& events);

class ResponseRun {
 public:
  using Clock = std::chrono::steady_clock;

  // `stops`: the request's stop strings; `turn_ends`: the server's (--stop), which end the
  // output as the model's own end of turn would (finish stop, no stop_sequence reported).
  // `parser` null: raw text (completions). Reasoning tokens are those up to and including
  // `answer_start_token` (the steering's `</think>`; -1 = the answer opens the output).
  ResponseRun(std::shared_ptr<runtime::Generation> gen, const TextCodec& codec, Metrics& metrics,
              std::vector<std::string> stops, const std::vector<std::string>& turn_ends,
              std::unique_ptr<text::OutputParser> parser, Clock::time_point start, bool want_logprobs,
              int32_t answer_start_token = -1);

  struct Piece {
    std::string text;                                // completions: new output text
    ChatDelta chat;                                  // chat: new deltas
    nlohmann::json logprobs = nlohmann::json::array();  // chat-style entries for this piece's tokens
    bool finished = false;
  };

  // Waits up to `timeout` for progress. Returns an empty piece on timeout. A stop string ends
  // the generation (cancel) at the token that completed it.
  Piece poll(std::chrono::milliseconds timeout);

  bool finished() const { return finished_; }
  // The finished event; its generated_tokens stop at a matched stop string, and its finish is
  // `stop` when one matched.
  const runtime::GenerationEvent& final_event() const { return final_; }
  bool saw_tool_calls() const { return out_.saw_tool_calls(); }
  // The request's stop string that ended the output, or empty (also when a turn end did).
  const std::string& stop_sequence() const { return request_stopped_ ? out_.stop_sequence() : kNoStop; }
  const std::string& output_text() const { return out_.text(); }
  const nlohmann::json& all_logprobs() const { return logprobs_; }
  // Tokens generated before the answer started (`</think>` included), counted as they came.
  int64_t reasoning_tokens() const { return reasoning_tokens_; }
  void cancel() { gen_->cancel(); }
  // The OpenAI finish_reason, or empty when the request failed.
  std::string finish_reason() const;

 private:
  void take(text::OutputStream::Piece& from, Piece& to);

  static inline const std::string kNoStop;

  std::shared_ptr<runtime::Generation> gen_;
  const TextCodec& codec_;
  Metrics& metrics_;
  text::OutputStream out_;
  std::vector<std::string> request_stops_;
  bool request_stopped_ = false;  // a stop string of the request (not a turn end) matched
  Clock::time_point start_, last_token_;
  bool want_logprobs_;
  int32_t answer_start_token_;
  bool in_reasoning_;
  int64_t reasoning_tokens_ = 0;
  bool first_token_ = false;
  bool finished_ = false;
  runtime::GenerationEvent final_;
  nlohmann::json logprobs_ = nlohmann::json::array();
};

}  // namespace dsv4::server

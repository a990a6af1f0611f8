#include "server/response_run.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace dsv4::server {

using json = nlohmann::json;
using runtime::FinishReason;
using runtime::GenerationEvent;

namespace {

std::string new_call_id() {
  static std::atomic<uint64_t> counter{1};
  char buf[40];
  std::snprintf(buf, sizeof buf, "call_%016llx", (unsigned long long)counter.fetch_add(1) * 0x9e3779b97f4a7c15ull);
  return buf;
}

json logprob_entry(const TextCodec& codec, int32_t token, float logprob) {
  const std::string text = codec.token_text(token);
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(int(c));
  return {{"token", text}, {"logprob", logprob}, {"bytes", bytes}};
}

}  // namespace

// A tool call is announced (id, name) and its arguments sent as one piece once the parser has
// the whole invoke.
ChatDelta chat_delta(const std::vector<text::CompletionEvent>& events) {
  ChatDelta d;
  for (const auto& e : events) {
    switch (e.kind) {
      case text::CompletionEventKind::reasoning_delta: d.reasoning += e.text; break;
      case text::CompletionEventKind::content_delta: d.content += e.text; break;
      case text::CompletionEventKind::tool_call_started: d.tool_calls.push_back({e.tool_index, new_call_id(), e.name, ""}); break;
      case text::CompletionEventKind::tool_call_arguments: d.tool_calls.push_back({e.tool_index, "", "", e.text}); break;
      case text::CompletionEventKind::tool_call_finished: break;
    }
  }
  return d;
}

namespace {

std::vector<std::string> joined(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

ResponseRun::ResponseRun(std::shared_ptr<runtime::Generation> gen, const TextCodec& codec, Metrics& metrics,
                         std::vector<std::string> stops, const std::vector<std::string>& turn_ends,
                         std::unique_ptr<text::OutputParser> parser, Clock::time_point start, bool want_logprobs,
                         int32_t answer_start_token)
    : gen_(std::move(gen)),
      codec_(codec),
      metrics_(metrics),
      out_(codec.new_token_decoder(), std::move(parser), joined(stops, turn_ends)),
      request_stops_(std::move(stops)),
      start_(start),
      want_logprobs_(want_logprobs),
      answer_start_token_(answer_start_token),
      in_reasoning_(answer_start_token >= 0) {}

ResponseRun::Piece ResponseRun::poll(std::chrono::milliseconds timeout) {
  Piece p;
  if (finished_) {
    p.finished = true;
    return p;
  }
  auto ev = gen_->next(timeout);
  if (!ev || ev->kind == GenerationEvent::Kind::prefill_progress) return p;
  text::OutputStream::Piece got;
  if (ev->kind == GenerationEvent::Kind::token) {
    const auto now = Clock::now();
    if (!first_token_) {
      first_token_ = true;
      metrics_.observe_ttft(std::chrono::duration<double>(now - start_).count());
    } else {
      metrics_.observe_itl(std::chrono::duration<double>(now - last_token_).count());
    }
    last_token_ = now;
    if (!out_.push(ev->sampled.token, got)) return p;  // in flight when a stop string matched
    if (in_reasoning_) {
      reasoning_tokens_ += 1;
      in_reasoning_ = ev->sampled.token != answer_start_token_;
    }
    if (want_logprobs_) {
      json e = logprob_entry(codec_, ev->sampled.token, ev->sampled.logprob);
      json top = json::array();
      for (const auto& t : ev->sampled.top) top.push_back(logprob_entry(codec_, t.token, t.logprob));
      e["top_logprobs"] = top;
      p.logprobs.push_back(e);
      logprobs_.push_back(e);
    }
    if (out_.stopped()) gen_->cancel();
    take(got, p);
    return p;
  }
  finished_ = true;
  p.finished = true;
  final_ = *ev;
  // A stop string ends the output at the token that completed it: tokens generated after it
  // (in flight, or in the same speculative round) are neither shown nor counted, and the answer
  // is finished however the generation then ended (the cancel that stopped it is ours; the token
  // that completed the stop may also have reached max_tokens), unless it failed.
  if (out_.stopped()) {
    final_.generated_tokens = std::min(final_.generated_tokens, out_.tokens());
    if (final_.finish != FinishReason::error) final_.finish = FinishReason::stop;
    request_stopped_ = std::find(request_stops_.begin(), request_stops_.end(), out_.stop_sequence()) != request_stops_.end();
  }
  out_.finish(got);
  take(got, p);
  return p;
}

void ResponseRun::take(text::OutputStream::Piece& from, Piece& to) {
  to.text += from.text;
  to.chat = chat_delta(from.events);
}

std::string ResponseRun::finish_reason() const {
  if (request_stopped_) return "stop";
  switch (final_.finish) {
    case FinishReason::stop: return out_.saw_tool_calls() ? "tool_calls" : "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "";
  }
  return "";
}

}  // namespace dsv4::server

#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>

#include "runtime/stop_strings.h"
#include "server/anthropic.h"
#include "server/audit_log.h"
#include "server/connection_probe.h"
#include "server/errors.h"
#include "server/metrics.h"
#include "server/request_guard.h"
#include "server/responses.h"
#include "server/sse.h"

namespace dsv4::server {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using runtime::FinishReason;
using runtime::GenerationEvent;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How long an HTTP thread waits for the scheduler before checking on its client.
constexpr std::chrono::milliseconds kPollInterval{100};
// A stream silent for this long gets an SSE comment, which also reveals a vanished client.
constexpr std::chrono::milliseconds kKeepAliveInterval{2000};
// The status recorded for a request whose client hung up before its answer (nginx's
// convention; nothing reaches the client).
constexpr int kClientClosedRequest = 499;
// A 429 says when to come back: a slot frees as soon as any running request ends, and clients
// (the OpenAI and Anthropic SDKs among them) back off further on their own.
constexpr const char* kRetryAfterSeconds = "1";

// Connection limits of the transport (cpp-httplib 0.11: one worker thread per connection, so
// every idle or slow connection holds a thread). Each read of a request must make progress
// within kReadTimeoutSeconds, a connection waits at most kKeepAliveSeconds for its next request
// and serves at most kKeepAliveRequests. (This bounds each read, not a whole request: a client
// trickling a byte at a time keeps its thread; that needs an event-driven transport.)
constexpr time_t kReadTimeoutSeconds = 5;
constexpr time_t kWriteTimeoutSeconds = 5;
constexpr time_t kKeepAliveSeconds = 5;
constexpr size_t kKeepAliveRequests = 100;

// httplib::Server with a real listen backlog: 0.11 listens with a backlog of 5, and a burst of
// 120 connections got resets (issue #15) where it should get answers or 429s.
class Transport final : public httplib::Server {
 public:
  // Linux takes a second listen() on a listening socket as a new backlog (capped by
  // net.core.somaxconn).
  bool raise_backlog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }
};

// "address:port" of the peer, IPv6 addresses in brackets.
std::string client_address(const httplib::Request& req) {
  const bool v6 = req.remote_addr.find(':') != std::string::npos;
  return (v6 ? "[" + req.remote_addr + "]" : req.remote_addr) + ":" + std::to_string(req.remote_port);
}

// Ends the connection once this response is out. Needed when a request is refused before its
// body is read: the unread bytes would be taken for the client's next request. cpp-httplib 0.11
// has no call for it; a content provider that writes the whole answer and then reports failure
// makes it close the socket after the response. The request's "Connection: close" makes the
// response say so.
void end_connection_after(const httplib::Request& req, httplib::Response& res) {
  auto& mreq = const_cast<httplib::Request&>(req);
  mreq.headers.erase("Connection");
  mreq.set_header("Connection", "close");
  const std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  res.set_content_provider(body->size(), type, [body](size_t offset, size_t length, httplib::DataSink& sink) {
    sink.write(body->data() + offset, length);
    return false;
  });
}

// Sets an SSE stream as the response: chunked for HTTP/1.1 clients; HTTP/1.0 clients cannot
// decode chunks, so theirs has no length and ends when the connection closes.
void stream_events(const httplib::Request& req, httplib::Response& res, httplib::ContentProviderWithoutLength provider,
                   httplib::ContentProviderResourceReleaser released) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  if (req.version != "HTTP/1.0") {
    res.set_chunked_content_provider("text/event-stream", std::move(provider), std::move(released));
    return;
  }
  auto& mreq = const_cast<httplib::Request&>(req);
  mreq.headers.erase("Connection");
  mreq.set_header("Connection", "close");
  auto ended = std::make_shared<bool>(false);
  res.set_content_provider(
      "text/event-stream",
      [provider = std::move(provider), ended](size_t offset, httplib::DataSink& sink) {
        httplib::DataSink inner;
        inner.write = sink.write;
        inner.is_writable = sink.is_writable;
        inner.done = [ended] { *ended = true; };
        // Once the last event is out, failing makes httplib close the connection, which is what
        // ends a body without a length (also for a client that asked for keep-alive).
        return provider(offset, inner) && !*ended;
      },
      std::move(released));
}

json logprob_entry(const TextCodec& codec, int32_t token, float logprob) {
  const std::string text = codec.token_text(token);
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(int(c));
  return {{"token", text}, {"logprob", logprob}, {"bytes", bytes}};
}

}  // namespace

namespace {
// Sends a batch of SSE frames, or a keep-alive after a silence (a comment for OpenAI clients, a
// ping event for Anthropic ones), and cancels the generation when the client has gone. Returns
// false when the stream must end.
template <typename Run>
bool flush_sse(httplib::DataSink& sink, std::string& out, Clock::time_point& last_write, Run& run,
               ApiStyle style = ApiStyle::openai) {
  if (out.empty() && Clock::now() - last_write > kKeepAliveInterval)
    out = style == ApiStyle::anthropic ? sse_event("ping", R"({"type": "ping"})") : sse_comment();
  if (!out.empty()) {
    last_write = Clock::now();
    if (sink.write(out.data(), out.size())) return true;
  } else if (sink.is_writable()) {
    return true;
  }
  run.cancel();
  return false;
}
}  // namespace

// One generation seen from the HTTP side: scheduler events in, text / chat deltas out. Applies
// stop strings to the detokenized text (ending generation early through cancel()), records
// latency metrics and counts the reasoning tokens: those up to and including
// `answer_start_token` (the steering's `</think>`; -1 = the answer opens the output).
class ResponseRun {
 public:
  ResponseRun(std::shared_ptr<runtime::Generation> gen, const TextCodec& codec, Metrics& metrics,
              std::vector<std::string> stops, std::unique_ptr<ChatOutputParser> parser, Clock::time_point start,
              bool want_logprobs, int32_t answer_start_token = -1)
      : gen_(std::move(gen)),
        codec_(codec),
        metrics_(metrics),
        text_(codec.new_text_stream()),
        stop_(std::move(stops)),
        parser_(std::move(parser)),
        start_(start),
        want_logprobs_(want_logprobs),
        answer_start_token_(answer_start_token),
        in_reasoning_(answer_start_token >= 0) {}

  struct Piece {
    std::string text;       // completions: new output text
    ChatDelta chat;         // chat: new deltas
    json logprobs = json::array();  // chat-style logprob entries for the tokens behind this piece
    bool finished = false;
  };

  // Waits up to `timeout` for progress. Returns an empty piece on timeout.
  Piece poll(std::chrono::milliseconds timeout) {
    Piece p;
    if (finished_) {
      p.finished = true;
      return p;
    }
    auto ev = gen_->next(timeout);
    if (!ev) return p;
    if (ev->kind == GenerationEvent::Kind::prefill_progress) return p;
    if (ev->kind == GenerationEvent::Kind::token) {
      const auto now = Clock::now();
      if (!first_token_) {
        first_token_ = true;
        metrics_.observe_ttft(std::chrono::duration<double>(now - start_).count());
      } else {
        metrics_.observe_itl(std::chrono::duration<double>(now - last_token_).count());
      }
      last_token_ = now;
      if (stop_.stopped()) return p;  // tokens that were in flight when a stop string matched
      tokens_before_stop_ += 1;
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
      emit(stop_.feed(text_->push(ev->sampled.token)), p);
      if (stop_.stopped()) gen_->cancel();
      return p;
    }
    // finished
    finished_ = true;
    p.finished = true;
    final_ = *ev;
    // A stop string ends the output at the token that completed it: tokens generated after it
    // (in flight, or in the same speculative round) are neither shown nor counted.
    if (stop_.stopped()) final_.generated_tokens = std::min(final_.generated_tokens, tokens_before_stop_);
    if (!stop_.stopped()) emit(stop_.feed(text_->finish()), p);
    if (!stop_.stopped()) emit(stop_.flush(), p);
    if (parser_) merge(p.chat, parser_->finish());
    return p;
  }

  bool finished() const { return finished_; }
  // The finished event; its generated_tokens stop at a matched stop string.
  const GenerationEvent& final_event() const { return final_; }
  bool saw_tool_calls() const { return saw_tool_calls_; }
  // The stop string that ended the output, or empty.
  const std::string& stop_sequence() const { return stop_.matched(); }
  const std::string& output_text() const { return output_; }
  const json& all_logprobs() const { return logprobs_; }
  // Tokens generated before the answer started (`</think>` included), counted as they came.
  int64_t reasoning_tokens() const { return reasoning_tokens_; }
  void cancel() { gen_->cancel(); }

  // The OpenAI finish_reason, or empty when the request failed.
  std::string finish_reason() const {
    if (stop_.stopped()) return "stop";
    switch (final_.finish) {
      case FinishReason::stop: return saw_tool_calls_ ? "tool_calls" : "stop";
      case FinishReason::length: return "length";
      case FinishReason::cancelled: return "cancelled";
      case FinishReason::error: return "";
    }
    return "";
  }

 private:
  static void merge(ChatDelta& into, ChatDelta d) {
    into.reasoning += d.reasoning;
    into.content += d.content;
    for (auto& t : d.tool_calls) into.tool_calls.push_back(std::move(t));
  }
  void emit(const std::string& text, Piece& p) {
    if (text.empty()) return;
    output_ += text;
    p.text += text;
    if (parser_) {
      ChatDelta d = parser_->push(text);
      if (!d.tool_calls.empty()) saw_tool_calls_ = true;
      merge(p.chat, std::move(d));
    }
  }

  std::shared_ptr<runtime::Generation> gen_;
  const TextCodec& codec_;
  Metrics& metrics_;
  std::unique_ptr<TokenTextStream> text_;
  runtime::StopMatcher stop_;
  std::unique_ptr<ChatOutputParser> parser_;
  Clock::time_point start_, last_token_;
  bool want_logprobs_;
  int32_t answer_start_token_;
  bool in_reasoning_;
  int64_t reasoning_tokens_ = 0;
  bool first_token_ = false;
  bool finished_ = false;
  int64_t tokens_before_stop_ = 0;   // token events up to the one that completed a stop string
  bool saw_tool_calls_ = false;
  GenerationEvent final_;
  std::string output_;
  json logprobs_ = json::array();
};

struct HttpServer::Impl {
  runtime::Scheduler& scheduler;
  const TextCodec& codec;
  ServerOptions options;
  std::vector<std::string> allowed_hosts;  // request_guard.h: allowed_host_names
  Transport http;
  Metrics metrics;
  ResponseStore responses;  // finished /v1/responses responses, for previous_response_id
  std::unique_ptr<AuditLog> audit;
  int bound_port = -1;
  std::atomic<uint64_t> next_id{1};

  Impl(runtime::Scheduler& s, const TextCodec& c, ServerOptions o)
      : scheduler(s),
        codec(c),
        options(std::move(o)),
        allowed_hosts(allowed_host_names(options.host, options.allowed_hosts)) {}

  std::string new_id(const char* prefix) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%llx%06llx", prefix, (unsigned long long)unix_seconds(),
                  (unsigned long long)next_id.fetch_add(1));
    return buf;
  }

  static void send_error(httplib::Response& res, const Status& st, ApiStyle style = ApiStyle::openai) {
    res.status = http_error_for(st.code()).http_status;
    if (res.status == 429) res.set_header("Retry-After", kRetryAfterSeconds);
    res.set_content(error_body(style, st), "application/json");
  }

  void audit_request(const std::string& endpoint, const std::string& client, const std::string& key_id,
                     const std::string& model, int status, int64_t prompt_tokens, int64_t generated,
                     const std::string& finish, Clock::time_point start, const std::string& prompt_text,
                     const std::string& output_text) {
    metrics.add_tokens(prompt_tokens, generated);
    if (!audit) return;
    AuditRecord r;
    r.client = client;
    r.key_id = key_id;
    r.endpoint = endpoint;
    r.model = model;
    r.http_status = status;
    r.prompt_tokens = prompt_tokens;
    r.generated_tokens = generated;
    r.finish_reason = finish;
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    r.prompt_text = prompt_text;
    r.output_text = output_text;
    audit->write(r);
  }
  void audit_request(const httplib::Request& req, const std::string& model, int status, int64_t prompt_tokens,
                     int64_t generated, const std::string& finish, Clock::time_point start,
                     const std::string& prompt_text, const std::string& output_text) {
    audit_request(req.path, client_address(req), req.get_header_value("X-Dsv4-Key-Id"), model, status, prompt_tokens,
                  generated, finish, start, prompt_text, output_text);
  }

  // A request refused at the edge (request_guard.h, authentication, an oversized body): the
  // error in the endpoint's API style, audited with the client's address, and the connection
  // closed after the answer (the body may be unread).
  void refuse(const httplib::Request& req, httplib::Response& res, const Refusal& r) {
    res.status = r.http_status;
    res.set_content(error_body(api_style_for_path(req.path), r.http_status, r.message, r.type, r.code),
                    "application/json");
    audit_request(req, "", r.http_status, 0, 0, "", Clock::now(), "", "");
    end_connection_after(req, res);
  }

  // Reads a POST body, whatever its framing, up to max_body_bytes. cpp-httplib 0.11 applies its
  // own limit to Content-Length bodies only (a chunked one was read whole into memory): here
  // reading stops at the limit. On failure the request is refused and false returned.
  bool read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                 std::string& body) {
    bool too_large = false;
    const bool complete = reader([&](const char* data, size_t n) {
      if (n > options.max_body_bytes - body.size()) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (complete) return true;
    refuse(req, res,
           too_large ? body_too_large(options.max_body_bytes)
                     : Refusal{400, "the request body could not be read (malformed chunked encoding, or it ended early)",
                               "invalid_request_error", "invalid_request"});
    return false;
  }

  // The checks before any route (request_guard.h), CORS for allowed browser origins, then the
  // API key. Returns true when the request was answered here.
  bool guard(const httplib::Request& req, httplib::Response& res) {
    // The key id travels to the handlers (and the audit log) in a request header that only the
    // server itself sets: a client's copy goes first.
    auto& mreq = const_cast<httplib::Request&>(req);
    mreq.headers.erase("X-Dsv4-Key-Id");
    std::optional<Refusal> r = check_host(req.get_header_value("Host"), req.local_addr, allowed_hosts);
    const std::string origin = req.get_header_value("Origin");
    if (!r) r = check_origin(origin, options.cors_origins);
    if (!r) {
      BodyHeaders b;
      b.method = req.method;
      b.content_length_count = req.get_header_value_count("Content-Length");
      const std::string length = req.get_header_value("Content-Length");
      b.content_length = length;
      const std::string coding = req.get_header_value("Transfer-Encoding");
      if (req.has_header("Transfer-Encoding")) b.transfer_encoding = coding;
      const std::string type = req.get_header_value("Content-Type");
      b.content_type = type;
      // A CORS preflight carries no body and asks before the real request.
      if (req.method != "OPTIONS") r = check_body_headers(b, options.max_body_bytes);
    }
    if (r) {
      refuse(req, res, *r);
      return true;
    }
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.status = 204;
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        const std::string asked = req.get_header_value("Access-Control-Request-Headers");
        res.set_header("Access-Control-Allow-Headers",
                       asked.empty() ? "authorization, content-type, x-api-key, anthropic-version" : asked);
        res.set_header("Access-Control-Max-Age", "600");
        return true;
      }
    }
    // Authentication on every endpoint but /health, by "Authorization: Bearer KEY" or (as
    // Anthropic clients send it) "x-api-key: KEY".
    if (req.path == "/health" || !options.api_keys.enabled()) return false;
    auto id = options.api_keys.check(req.get_header_value("Authorization"));
    if (!id && req.has_header("x-api-key")) id = options.api_keys.check_key(req.get_header_value("x-api-key"));
    if (!id) {
      res.set_header("WWW-Authenticate", "Bearer");
      refuse(req, res,
             {401, "Incorrect or missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
              "authentication_error", "invalid_api_key"});
      return true;
    }
    mreq.set_header("X-Dsv4-Key-Id", *id);
    return false;
  }

  // A POST route: the body is read (capped) before `handle` runs.
  httplib::Server::HandlerWithContentReader with_body(
      void (Impl::*handle)(const httplib::Request&, const std::string&, httplib::Response&)) {
    return [this, handle](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(req, res, reader, body)) (this->*handle)(req, body, res);
    };
  }

  // A generation request refused before it ran: the error response (in the endpoint's API
  // style), counted and audited.
  void reject(const httplib::Request& req, httplib::Response& res, const Status& st, const std::string& model,
              int64_t prompt_tokens, Clock::time_point start) {
    send_error(res, st, api_style_for_path(req.path));
    audit_request(req, model, res.status, prompt_tokens, 0, "", start, "", "");
  }

  // Common front half of every generation endpoint: submission, with the output steering of a
  // chat request (tool_choice, thinking budget).
  Result<std::shared_ptr<runtime::Generation>> submit(const GenerationOptions& g, std::vector<int32_t> prompt,
                                                      const OutputSteering& steer = {}) {
    runtime::GenerationRequest gr;
    gr.prompt = std::move(prompt);
    gr.sampling = g.sampling;
    gr.max_tokens = g.max_tokens > 0 ? g.max_tokens : options.default_max_tokens;
    gr.stop_token_ids = g.stop_token_ids;
    gr.ignore_eos = g.ignore_eos;
    gr.answer_start_token = steer.answer_start_token;
    gr.answer_prefix = steer.answer_prefix;
    gr.thinking_budget = steer.thinking_budget;
    gr.banned_tokens = steer.banned_tokens;
    return scheduler.submit(std::move(gr));
  }

  Status check_model(const std::string& model) const {
    if (model != options.model_id)
      return Status::not_found("The model '" + model + "' does not exist; this server serves '" + options.model_id + "'");
    return {};
  }

  static json usage_json(const GenerationEvent& f) {
    return {{"prompt_tokens", f.prompt_tokens},
            {"completion_tokens", f.generated_tokens},
            {"total_tokens", f.prompt_tokens + f.generated_tokens},
            {"prompt_tokens_details", {{"cached_tokens", f.cached_tokens}}},
            // Speculative decoding's drafts, in the fields OpenAI uses for predicted outputs.
            {"completion_tokens_details",
             {{"accepted_prediction_tokens", f.accepted_tokens},
              {"rejected_prediction_tokens", f.drafted_tokens - f.accepted_tokens}}}};
  }

  // A chat generation under way, shared by /v1/chat/completions and /v1/messages.
  struct ChatRun {
    std::shared_ptr<ChatRequest> request;
    std::shared_ptr<ResponseRun> run;
    int64_t prompt_tokens = 0;
    std::string prompt_text;  // for the audit log (--audit-content)
  };

  // Model check, rendering, steering and submission of a parsed chat request. On failure the
  // error response is set (and audited) and nullopt returned.
  std::optional<ChatRun> start_chat(const httplib::Request& req, httplib::Response& res, Result<ChatRequest> parsed,
                                    Clock::time_point start) {
    if (!parsed.ok()) {
      reject(req, res, parsed.status(), "", 0, start);
      return std::nullopt;
    }
    ChatRun c;
    c.request = std::make_shared<ChatRequest>(std::move(parsed).value());
    const ChatRequest& r = *c.request;
    if (Status st = check_model(r.gen.model); !st.ok()) {
      reject(req, res, st, r.gen.model, 0, start);
      return std::nullopt;
    }
    auto prompt = codec.encode_chat(r);
    if (!prompt.ok()) {
      reject(req, res, prompt.status(), r.gen.model, 0, start);
      return std::nullopt;
    }
    c.prompt_tokens = int64_t(prompt->size());
    const OutputSteering steer = codec.steering(r);
    auto gen = submit(r.gen, std::move(prompt).value(), steer);
    if (!gen.ok()) {
      reject(req, res, gen.status(), r.gen.model, c.prompt_tokens, start);
      return std::nullopt;
    }
    c.run = std::make_shared<ResponseRun>(*gen, codec, metrics, r.gen.stop, codec.new_chat_parser(r), start,
                                          r.gen.logprobs, steer.answer_start_token);
    if (options.audit_content) c.prompt_text = r.messages.dump(-1, ' ', false, json::error_handler_t::replace);
    return c;
  }

  // Non-streaming: reads the generation to its end, handing every piece to `on_piece`. A client
  // that hangs up meanwhile cancels it (its sequence is freed at the scheduler's next step); the
  // request is then audited as cancelled (status 499, nothing can be sent) and false returned.
  bool wait_for_answer(const httplib::Request& req, httplib::Response& res, ResponseRun& run,
                       const std::string& model, int64_t prompt_tokens, Clock::time_point start,
                       const std::string& prompt_text, const std::function<void(ResponseRun::Piece&)>& on_piece) {
    const ConnectionProbe client(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    while (!run.finished()) {
      auto p = run.poll(kPollInterval);
      on_piece(p);
      if (run.finished() || !client.peer_closed()) continue;
      run.cancel();
      while (!run.finished()) run.poll(kPollInterval);
      res.status = kClientClosedRequest;
      audit_request(req, model, res.status, prompt_tokens, run.final_event().generated_tokens, "cancelled", start,
                    prompt_text, run.output_text());
      return false;
    }
    return true;
  }

  // The content provider's release callback of a stream: a stream that ends before its
  // generation (the client went away) cancels it; either way the request is audited.
  std::function<void(bool)> stream_closed(const httplib::Request& req, std::shared_ptr<ResponseRun> run,
                                          std::string model, int64_t prompt_tokens, std::string prompt_text,
                                          Clock::time_point start) {
    return [this, run, model = std::move(model), endpoint = req.path, client = client_address(req),
            key = req.get_header_value("X-Dsv4-Key-Id"), prompt_tokens, prompt_text = std::move(prompt_text),
            start](bool) {
      if (!run->finished()) run->cancel();
      audit_request(endpoint, client, key, model, 200, prompt_tokens, run->final_event().generated_tokens,
                    run->finished() ? run->finish_reason() : "cancelled", start, prompt_text, run->output_text());
    };
  }

  // A failed generation after submission (an engine error): the error response, audited.
  void fail_generation(const httplib::Request& req, httplib::Response& res, const ChatRun& c, Clock::time_point start) {
    const auto& f = c.run->final_event();
    audit_request(req, c.request->gen.model, 500, c.prompt_tokens, f.generated_tokens, "", start, c.prompt_text,
                  c.run->output_text());
    send_error(res, f.status, api_style_for_path(req.path));
  }

  // ---- /v1/chat/completions ----
  void handle_chat(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    const auto start = Clock::now();
    auto chat = start_chat(req, res, parse_chat_request(body, codec.encoder_revision()), start);
    if (!chat) return;
    auto r = chat->request;
    auto run = chat->run;
    const int64_t n_prompt = chat->prompt_tokens;
    const std::string id = new_id("chatcmpl-");
    const int64_t created = unix_seconds();

    if (!r->gen.stream) {
      ChatDelta all;
      std::vector<ToolCallDelta> calls;
      const bool answered = wait_for_answer(req, res, *run, r->gen.model, n_prompt, start, chat->prompt_text,
                                            [&](ResponseRun::Piece& p) {
                                              all.reasoning += p.chat.reasoning;
                                              all.content += p.chat.content;
                                              for (auto& t : p.chat.tool_calls) calls.push_back(std::move(t));
                                            });
      if (!answered) return;
      const auto& f = run->final_event();
      if (f.finish == FinishReason::error) return fail_generation(req, res, *chat, start);
      json tool_calls = json::array();
      for (const auto& d : calls) {
        if (d.index >= int(tool_calls.size()))
          tool_calls.push_back({{"id", d.id}, {"type", "function"}, {"function", {{"name", d.name}, {"arguments", ""}}}});
        auto& c = tool_calls[size_t(d.index)];
        if (!d.name.empty()) c["function"]["name"] = d.name;
        if (!d.id.empty()) c["id"] = d.id;
        c["function"]["arguments"] = c["function"]["arguments"].get<std::string>() + d.arguments;
      }
      json message = {{"role", "assistant"}};
      message["content"] = (all.content.empty() && !tool_calls.empty()) ? json(nullptr) : json(all.content);
      if (r->thinking != ThinkingMode::chat) message["reasoning_content"] = all.reasoning;
      if (!tool_calls.empty()) message["tool_calls"] = tool_calls;
      json choice = {{"index", 0}, {"message", message}, {"finish_reason", run->finish_reason()}};
      choice["logprobs"] = r->gen.logprobs ? json({{"content", run->all_logprobs()}}) : json(nullptr);
      json body = {{"id", id},           {"object", "chat.completion"}, {"created", created},
                   {"model", r->gen.model}, {"choices", json::array({choice})}, {"usage", usage_json(f)}};
      res.set_content(dump(body), "application/json");
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start,
                    chat->prompt_text, run->output_text());
      return;
    }

    // Streaming: one SSE frame per delta, then finish_reason, usage (if asked) and [DONE].
    struct StreamState {
      bool sent_role = false;
      Clock::time_point last_write = Clock::now();
    };
    auto state = std::make_shared<StreamState>();
    auto chunk = [id, created, model = r->gen.model](json delta, json finish, json logprobs) {
      json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                     {"finish_reason", std::move(finish)}};
      return json{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                  {"choices", json::array({choice})}};
    };
    stream_events(
        req, res,
        [run, state, r, chunk](size_t, httplib::DataSink& sink) -> bool {
          std::string out;
          if (!state->sent_role) {
            state->sent_role = true;
            out += sse_data(dump(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)));
          }
          auto p = run->poll(kPollInterval);
          json delta = json::object();
          if (!p.chat.reasoning.empty()) delta["reasoning_content"] = p.chat.reasoning;
          if (!p.chat.content.empty()) delta["content"] = p.chat.content;
          if (!p.chat.tool_calls.empty()) {
            json calls = json::array();
            for (const auto& t : p.chat.tool_calls) {
              json c = {{"index", t.index}, {"function", {{"arguments", t.arguments}}}};
              if (!t.id.empty()) {
                c["id"] = t.id;
                c["type"] = "function";
              }
              if (!t.name.empty()) c["function"]["name"] = t.name;
              calls.push_back(c);
            }
            delta["tool_calls"] = calls;
          }
          if (!delta.empty() || !p.logprobs.empty()) {
            json lp = r->gen.logprobs ? json({{"content", p.logprobs}}) : json(nullptr);
            out += sse_data(dump(chunk(delta, nullptr, lp)));
          }
          if (p.finished) {
            const auto& f = run->final_event();
            if (f.finish == FinishReason::error) {
              out += sse_data(error_body(f.status));
            } else {
              out += sse_data(dump(chunk(json::object(), run->finish_reason(), nullptr)));
              if (r->gen.include_usage) {
                json u = chunk(json::object(), nullptr, nullptr);
                u["choices"] = json::array();
                u["usage"] = usage_json(f);
                out += sse_data(dump(u));
              }
            }
            out += sse_done();
          }
          if (!flush_sse(sink, out, state->last_write, *run)) return false;
          if (p.finished) sink.done();
          return true;
        },
        stream_closed(req, run, r->gen.model, n_prompt, chat->prompt_text, start));
  }

  // ---- /v1/messages (Anthropic) ----
  void handle_messages(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    const auto start = Clock::now();
    auto chat = start_chat(req, res, parse_messages_request(body, codec.encoder_revision()), start);
    if (!chat) return;
    auto r = chat->request;
    auto run = chat->run;
    const int64_t n_prompt = chat->prompt_tokens;
    const std::string id = new_id("msg_");
    auto stop_reason = [run] {
      return messages_stop_reason(run->final_event().finish, !run->stop_sequence().empty(), run->saw_tool_calls());
    };
    auto usage = [run] {
      const auto& f = run->final_event();
      return messages_usage(f.prompt_tokens, f.cached_tokens, f.generated_tokens);
    };

    if (!r->gen.stream) {
      MessageBlocks blocks;
      if (!wait_for_answer(req, res, *run, r->gen.model, n_prompt, start, chat->prompt_text,
                           [&](ResponseRun::Piece& p) { blocks.push(p.chat); }))
        return;
      const auto& f = run->final_event();
      if (f.finish == FinishReason::error) return fail_generation(req, res, *chat, start);
      blocks.finish();
      res.set_content(dump(message_json(id, r->gen.model, blocks.content(), stop_reason(), run->stop_sequence(), usage())),
                      "application/json");
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start,
                    chat->prompt_text, run->output_text());
      return;
    }

    // Streaming: message_start, ping, content_block_start / _delta / _stop per block,
    // message_delta (stop_reason, final usage), message_stop.
    struct StreamState {
      bool started = false;
      MessageBlocks blocks;
      Clock::time_point last_write = Clock::now();
    };
    auto state = std::make_shared<StreamState>();
    stream_events(
        req, res,
        [run, state, r, id, n_prompt, stop_reason, usage](size_t, httplib::DataSink& sink) -> bool {
          std::string out;
          if (!state->started) {
            state->started = true;
            const json message = message_json(id, r->gen.model, json::array(), "", "", messages_usage(n_prompt, 0, 0));
            out += messages_sse({{"type", "message_start"}, {"message", message}});
            out += messages_sse({{"type", "ping"}});
          }
          auto p = run->poll(kPollInterval);
          for (const json& e : state->blocks.push(p.chat)) out += messages_sse(e);
          if (p.finished) {
            const auto& f = run->final_event();
            if (f.finish == FinishReason::error) {
              out += sse_event("error", anthropic_error_body(500, f.status.message()));
            } else {
              for (const json& e : state->blocks.finish()) out += messages_sse(e);
              json delta = {{"stop_reason", stop_reason()}, {"stop_sequence", nullptr}};
              if (!run->stop_sequence().empty()) delta["stop_sequence"] = run->stop_sequence();
              out += messages_sse({{"type", "message_delta"}, {"delta", delta}, {"usage", usage()}});
              out += messages_sse({{"type", "message_stop"}});
            }
          }
          if (!flush_sse(sink, out, state->last_write, *run, ApiStyle::anthropic)) return false;
          if (p.finished) sink.done();
          return true;
        },
        stream_closed(req, run, r->gen.model, n_prompt, chat->prompt_text, start));
  }

  // ---- /v1/responses (OpenAI Responses API: server/responses.h builds the response) ----
  void handle_responses(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    const auto start = Clock::now();
    auto parsed = parse_responses_request(body, codec.encoder_revision(), responses);
    if (!parsed.ok()) {
      res.status = http_error_for(parsed.status().code()).http_status;
      res.set_content(responses_error_body(parsed.status()), "application/json");
      return audit_request(req, "", res.status, 0, 0, "", start, "", "");
    }
    auto rr = std::make_shared<ResponsesRequest>(std::move(parsed).value());
    auto builder = std::make_shared<ResponseBuilder>(new_id("resp_"), unix_seconds(), *rr);
    auto chat = start_chat(req, res, std::move(rr->chat), start);
    if (!chat) return;
    auto run = chat->run;
    const std::string& model = chat->request->gen.model;
    // The closing events, once the generation has finished; a finished response is kept for
    // previous_response_id.
    auto finish = [this, run, rr, builder] {
      const auto& f = run->final_event();
      auto events = builder->finish(f.finish, {f.prompt_tokens, f.cached_tokens, f.generated_tokens, run->reasoning_tokens()},
                                    f.status.message());
      remember_response(responses, *rr, *builder);
      return events;
    };

    if (!chat->request->gen.stream) {
      if (!wait_for_answer(req, res, *run, model, chat->prompt_tokens, start, chat->prompt_text,
                           [&](ResponseRun::Piece& p) { builder->push(p.chat); }))
        return;
      if (run->final_event().finish == FinishReason::error) return fail_generation(req, res, *chat, start);
      finish();
      res.set_content(dump(builder->response()), "application/json");
      audit_request(req, model, 200, chat->prompt_tokens, run->final_event().generated_tokens, run->finish_reason(),
                    start, chat->prompt_text, run->output_text());
      return;
    }

    auto started = std::make_shared<bool>(false);
    auto last_write = std::make_shared<Clock::time_point>(Clock::now());
    stream_events(
        req, res,
        [run, builder, finish, started, last_write](size_t, httplib::DataSink& sink) -> bool {
          std::string out;
          if (!*started) {
            *started = true;
            for (const json& e : builder->start()) out += responses_sse(e);
          }
          auto p = run->poll(kPollInterval);
          for (const json& e : builder->push(p.chat)) out += responses_sse(e);
          if (p.finished)
            for (const json& e : finish()) out += responses_sse(e);
          if (!flush_sse(sink, out, *last_write, *run)) return false;
          if (p.finished) sink.done();
          return true;
        },
        stream_closed(req, run, model, chat->prompt_tokens, chat->prompt_text, start));
  }

  // ---- /v1/messages/count_tokens (Anthropic) ----
  void handle_count_tokens(const httplib::Request&, const std::string& body, httplib::Response& res) {
    auto parsed = parse_messages_request(body, codec.encoder_revision(), /*count_tokens=*/true);
    if (!parsed.ok()) return send_error(res, parsed.status(), ApiStyle::anthropic);
    if (Status st = check_model(parsed->gen.model); !st.ok()) return send_error(res, st, ApiStyle::anthropic);
    auto prompt = codec.encode_chat(*parsed);
    if (!prompt.ok()) return send_error(res, prompt.status(), ApiStyle::anthropic);
    res.set_content(dump({{"input_tokens", prompt->size()}}), "application/json");
  }

  // ---- /v1/completions ----
  void handle_completion(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    const auto start = Clock::now();
    auto parsed = parse_completion_request(body);
    if (!parsed.ok()) return reject(req, res, parsed.status(), "", 0, start);
    auto r = std::make_shared<CompletionRequest>(std::move(parsed).value());
    if (Status st = check_model(r->gen.model); !st.ok()) return reject(req, res, st, r->gen.model, 0, start);
    std::vector<int32_t> prompt = r->prompt_ids.empty() ? codec.encode_text(r->prompt) : r->prompt_ids;
    const int64_t n_prompt = int64_t(prompt.size());
    auto gen = submit(r->gen, std::move(prompt));
    if (!gen.ok()) return reject(req, res, gen.status(), r->gen.model, n_prompt, start);
    auto run = std::make_shared<ResponseRun>(*gen, codec, metrics, r->gen.stop, nullptr, start, r->gen.logprobs);
    const std::string id = new_id("cmpl-");
    const int64_t created = unix_seconds();
    const std::string echo = r->echo ? r->prompt : std::string();
    const std::string prompt_text = options.audit_content ? r->prompt : std::string();
    // Completions-style logprobs from chat-style entries.
    auto completion_logprobs = [](const json& entries) {
      json tokens = json::array(), lps = json::array(), tops = json::array();
      for (const auto& e : entries) {
        tokens.push_back(e["token"]);
        lps.push_back(e["logprob"]);
        json t = json::object();
        for (const auto& alt : e["top_logprobs"]) t[alt["token"].get<std::string>()] = alt["logprob"];
        tops.push_back(t);
      }
      return json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}};
    };

    if (!r->gen.stream) {
      std::string text = echo;
      if (!wait_for_answer(req, res, *run, r->gen.model, n_prompt, start, prompt_text,
                           [&](ResponseRun::Piece& p) { text += p.text; }))
        return;
      const auto& f = run->final_event();
      if (f.finish == FinishReason::error) {
        audit_request(req, r->gen.model, 500, n_prompt, f.generated_tokens, "", start, prompt_text, run->output_text());
        return send_error(res, f.status);
      }
      json choice = {{"index", 0}, {"text", text}, {"finish_reason", run->finish_reason()}};
      choice["logprobs"] = r->gen.logprobs ? completion_logprobs(run->all_logprobs()) : json(nullptr);
      json body = {{"id", id},           {"object", "text_completion"}, {"created", created},
                   {"model", r->gen.model}, {"choices", json::array({choice})}, {"usage", usage_json(f)}};
      res.set_content(dump(body), "application/json");
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start, prompt_text,
                    run->output_text());
      return;
    }

    auto echoed = std::make_shared<bool>(echo.empty());
    auto last_write = std::make_shared<Clock::time_point>(Clock::now());
    stream_events(
        req, res,
        [run, r, id, created, echo, echoed, last_write, completion_logprobs](size_t, httplib::DataSink& sink) {
          auto frame = [&](const std::string& text, json finish, json logprobs) {
            json choice = {{"index", 0}, {"text", text}, {"logprobs", std::move(logprobs)},
                           {"finish_reason", std::move(finish)}};
            return sse_data(dump({{"id", id}, {"object", "text_completion"}, {"created", created},
                                  {"model", r->gen.model}, {"choices", json::array({choice})}}));
          };
          std::string out;
          if (!*echoed) {
            *echoed = true;
            out += frame(echo, nullptr, nullptr);
          }
          auto p = run->poll(kPollInterval);
          if (!p.text.empty() || !p.logprobs.empty())
            out += frame(p.text, nullptr, r->gen.logprobs ? completion_logprobs(p.logprobs) : json(nullptr));
          if (p.finished) {
            const auto& f = run->final_event();
            if (f.finish == FinishReason::error) {
              out += sse_data(error_body(f.status));
            } else {
              out += frame("", run->finish_reason(), nullptr);
              if (r->gen.include_usage)
                out += sse_data(dump({{"id", id}, {"object", "text_completion"}, {"created", created},
                                      {"model", r->gen.model}, {"choices", json::array()}, {"usage", usage_json(f)}}));
            }
            out += sse_done();
          }
          if (!flush_sse(sink, out, *last_write, *run)) return false;
          if (p.finished) sink.done();
          return true;
        },
        stream_closed(req, run, r->gen.model, n_prompt, prompt_text, start));
  }

  void no_route(const httplib::Request&, const std::string&, httplib::Response& res) { res.status = 404; }

  void setup_routes() {
    const int threads = options.http_threads > 0
                            ? options.http_threads
                            : scheduler.options().max_running + scheduler.options().max_queued + 16;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    // A backstop: read_body caps every framing itself.
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(kReadTimeoutSeconds);
    http.set_write_timeout(kWriteTimeoutSeconds);
    http.set_keep_alive_timeout(kKeepAliveSeconds);
    http.set_keep_alive_max_count(kKeepAliveRequests);
    // cpp-httplib's default sets SO_REUSEPORT, with which a second server on a busy port binds
    // without error and silently takes half the connections. SO_REUSEADDR alone still allows a
    // restart while old connections linger in TIME_WAIT, and makes a busy port an error.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return guard(req, res) ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
    });

    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      const auto s = scheduler.stats();
      Metrics::Gauges g;
      g.queued = s.queued;
      g.running = s.running;
      g.prefix_hits = s.prefix_hits;
      g.prefix_tokens_reused = s.prefix_tokens_reused;
      g.spec_rounds = s.spec_rounds;
      g.drafted_tokens = s.drafted_tokens;
      g.accepted_tokens = s.accepted_tokens;
      res.set_content(metrics.render(g), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", options.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "dsv4"},
                {"max_model_len", scheduler.max_context()}};
      res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (Status st = check_model(req.matches[1]); !st.ok()) return send_error(res, st);
      res.set_content(dump({{"id", options.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "dsv4"}}),
                      "application/json");
    });
    http.Post("/v1/chat/completions", with_body(&Impl::handle_chat));
    http.Post("/v1/completions", with_body(&Impl::handle_completion));
    http.Post("/v1/messages", with_body(&Impl::handle_messages));
    http.Post("/v1/messages/count_tokens", with_body(&Impl::handle_count_tokens));
    http.Post("/v1/responses", with_body(&Impl::handle_responses));
    // Any other POST: its body is read under the same cap (httplib would read it whole), then 404.
    http.Post(".*", with_body(&Impl::no_route));

    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      // A response with content (a body, or the provider of end_connection_after; both set
      // Content-Type) keeps it.
      if (!res.body.empty() || res.has_header("Content-Type")) return;
      const ApiStyle style = api_style_for_path(req.path);
      if (res.status == 404)
        res.set_content(error_body(style, 404, "No route for " + req.method + " " + req.path, "invalid_request_error",
                                   "not_found"),
                        "application/json");
      else if (res.status == 413)
        res.set_content(error_body(style, 413, "The request body is larger than the server accepts",
                                   "invalid_request_error", "request_too_large"),
                        "application/json");
      else
        res.set_content(error_body(style, res.status, "HTTP error " + std::to_string(res.status),
                                   "invalid_request_error", ""),
                        "application/json");
    });
    http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(error_body(api_style_for_path(req.path), 500, "internal error while handling the request",
                                 "server_error", "internal_error"),
                      "application/json");
    });
    // Counted before the response is written (cpp-httplib runs this after routing and the error
    // handler): a client that reads /metrics right after a response then always sees it counted,
    // which a logger (run after the write) does not guarantee.
    http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      std::string endpoint = req.path;
      if (endpoint.rfind("/v1/models/", 0) == 0) endpoint = "/v1/models/{id}";
      else if (endpoint != "/health" && endpoint != "/metrics" && endpoint != "/v1/models" &&
               endpoint != "/v1/chat/completions" && endpoint != "/v1/completions" && endpoint != "/v1/messages" &&
               endpoint != "/v1/messages/count_tokens" && endpoint != "/v1/responses")
        endpoint = "other";
      metrics.count_request(endpoint, res.status);
    });
  }
};

HttpServer::HttpServer(runtime::Scheduler& scheduler, const TextCodec& codec, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, codec, std::move(options))) {
  impl_->setup_routes();
}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::bind() {
  if (!impl_->options.audit_log_path.empty()) {
    DSV4_ASSIGN_OR_RETURN(impl_->audit, AuditLog::open(impl_->options.audit_log_path, impl_->options.audit_content));
  }
  const auto& o = impl_->options;
  if (o.port == 0) {
    impl_->bound_port = impl_->http.bind_to_any_port(o.host);
    if (impl_->bound_port <= 0) return Status::io_error("cannot listen on " + o.host + " (any port)");
  } else {
    if (!impl_->http.bind_to_port(o.host, o.port))
      return Status::io_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                              " (address in use or not available)");
    impl_->bound_port = o.port;
  }
  if (!impl_->http.raise_backlog()) return Status::io_error("cannot raise the listen backlog of " + o.host);
  return {};
}

int HttpServer::port() const { return impl_->bound_port; }

Status HttpServer::run() {
  if (!impl_->http.listen_after_bind()) return Status::io_error("the HTTP server stopped with an error");
  return {};
}

void HttpServer::stop() {
  if (impl_ && impl_->http.is_running()) impl_->http.stop();
}

}  // namespace dsv4::server

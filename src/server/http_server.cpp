#include "server/http_server.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>

#include "server/anthropic.h"
#include "server/audit_log.h"
#include "server/errors.h"
#include "server/http_transport.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/request_guard.h"
#include "server/response_run.h"
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

// How long a handler waits for the scheduler before checking on its client.
constexpr std::chrono::milliseconds kPollInterval{100};
// A stream silent for this long gets an SSE comment, which also reveals a vanished client.
constexpr std::chrono::milliseconds kKeepAliveInterval{2000};
// The status recorded for a request whose client hung up before its answer (nginx's
// convention; nothing reaches the client).
constexpr int kClientClosedRequest = 499;
// A 429 says when to come back: a slot frees as soon as any running request ends, and clients
// (the OpenAI and Anthropic SDKs among them) back off further on their own.
constexpr const char* kRetryAfterSeconds = "1";

}  // namespace


namespace {

// Sends a batch of SSE frames, or a keep-alive after a silence (a comment for OpenAI clients, a
// ping event for Anthropic ones), and cancels the generation when the client has gone. Returns
// false when the stream must end.
bool flush_sse(HttpResponse& res, std::string& out, Clock::time_point& last_write, ResponseRun& run, ApiStyle style) {
  if (out.empty() && Clock::now() - last_write > kKeepAliveInterval)
    out = style == ApiStyle::anthropic ? sse_event("ping", R"({"type": "ping"})") : sse_comment();
  if (!out.empty()) {
    last_write = Clock::now();
    if (res.write(out)) return true;
  } else if (!res.peer_closed()) {
    return true;
  }
  run.cancel();
  return false;
}

}  // namespace

struct HttpServer::Impl final : HttpApp {
  // A route: its handler, and whether it generates (a worker thread) or answers at once (the
  // transport's I/O thread; it must not block). A path ending in "{id}" matches any non-empty
  // rest; the path is also the endpoint label of the request metrics.
  struct Route {
    std::string_view method;
    std::string_view path;
    void (Impl::*handle)(const HttpRequest&, HttpResponse&);
    bool generates;
  };
  static std::span<const Route> routes();  // the table, after the class

  runtime::Scheduler& scheduler;
  const TextCodec& codec;
  ServerOptions options;
  std::vector<std::string> allowed_hosts;  // request_guard.h: allowed_host_names
  Metrics metrics;
  ResponseStore responses;  // finished /v1/responses responses, for previous_response_id
  std::unique_ptr<AuditLog> audit;
  std::atomic<uint64_t> next_id{1};
  HttpTransport http;

  Impl(runtime::Scheduler& s, const TextCodec& c, ServerOptions o)
      : scheduler(s),
        codec(c),
        options(std::move(o)),
        allowed_hosts(allowed_host_names(options.host, options.allowed_hosts)),
        http(*this, transport_options(options, scheduler)) {}

  static TransportOptions transport_options(const ServerOptions& o, const runtime::Scheduler& s) {
    TransportOptions t;
    t.limits = o.limits;
    t.max_body_bytes = o.max_body_bytes;
    // Enough workers for every running and queued request, and a few to refuse more with 429s
    // and count tokens.
    t.worker_threads = o.http_threads > 0 ? o.http_threads : s.options().max_running + s.options().max_queued + 16;
    return t;
  }

  static bool matches(std::string_view pattern, std::string_view path) {
    constexpr std::string_view kAny = "{id}";
    if (pattern.size() > kAny.size() && pattern.substr(pattern.size() - kAny.size()) == kAny) {
      const std::string_view prefix = pattern.substr(0, pattern.size() - kAny.size());
      return path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix;
    }
    return pattern == path;
  }

  // ---- HttpApp ----

  HttpRoute accept(HttpRequest& req, HttpResponse& res) override {
    if (guard(req, res)) return {};
    // HEAD is GET without the body (the transport leaves it out).
    const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
    for (const Route& r : routes()) {
      if (r.method != method || !matches(r.path, req.path)) continue;
      return {[this, handle = r.handle](const HttpRequest& q, HttpResponse& s) { (this->*handle)(q, s); },
              r.generates};
    }
    // Any other request (a POST's body is read first, under the same cap): 404.
    return {[this](const HttpRequest& q, HttpResponse& s) { no_route(q, s); }, false};
  }

  // A request refused at the edge (request_guard.h, authentication, an oversized or malformed
  // body, no free worker): the error in the endpoint's API style, audited with the client's
  // address, and the connection closed after the answer (the body may be unread).
  void refuse(const HttpRequest& req, const Refusal& r, HttpResponse& res) override {
    if (r.http_status == 429 || r.http_status == 503) res.add_header("Retry-After", kRetryAfterSeconds);
    res.close_after();
    audit_request(req, "", r.http_status, 0, 0, "", Clock::now(), "", "");
    res.send(r.http_status, "application/json",
             error_body(api_style_for_path(req.path), r.http_status, r.message, r.type, r.code));
  }

  // Counted before the response is written: a client that reads /metrics right after a
  // response always sees it counted.
  void answered(const HttpRequest& req, int status) override {
    std::string_view endpoint = "other";
    for (const Route& r : routes())
      if (matches(r.path, req.path)) endpoint = r.path;
    metrics.count_request(std::string(endpoint), status);
  }

  // ---- common parts of the handlers ----

  std::string new_id(const char* prefix) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%llx%06llx", prefix, (unsigned long long)unix_seconds(),
                  (unsigned long long)next_id.fetch_add(1));
    return buf;
  }

  static void send_error(HttpResponse& res, const Status& st, ApiStyle style = ApiStyle::openai) {
    const int status = http_error_for(st.code()).http_status;
    if (status == 429) res.add_header("Retry-After", kRetryAfterSeconds);
    res.send(status, "application/json", error_body(style, st));
  }

  void audit_request(const HttpRequest& req, const std::string& model, int status, int64_t prompt_tokens,
                     int64_t generated, const std::string& finish, Clock::time_point start,
                     const std::string& prompt_text, const std::string& output_text) {
    metrics.add_tokens(prompt_tokens, generated);
    if (!audit) return;
    AuditRecord r;
    r.client = req.client;
    r.key_id = req.key_id;
    r.endpoint = req.path;
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

  // The checks before any route (request_guard.h), CORS for allowed browser origins, then the
  // API key. Returns true when the request was answered here.
  bool guard(HttpRequest& req, HttpResponse& res) {
    std::optional<Refusal> r = check_host(req.header("Host"), req.local_addr, allowed_hosts);
    const std::string origin(req.header("Origin"));
    if (!r) r = check_origin(origin, options.cors_origins);
    if (!r) {
      BodyHeaders b;
      b.method = req.method;
      b.content_length_count = req.header_count("Content-Length");
      b.content_length = req.header("Content-Length");
      if (req.has_header("Transfer-Encoding")) b.transfer_encoding = req.header("Transfer-Encoding");
      b.content_type = req.header("Content-Type");
      // A CORS preflight carries no body and asks before the real request.
      if (req.method != "OPTIONS") r = check_body_headers(b, options.max_body_bytes);
    }
    if (r) {
      refuse(req, *r, res);
      return true;
    }
    if (!origin.empty()) {
      res.add_header("Access-Control-Allow-Origin", origin);
      res.add_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.add_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        const std::string_view asked = req.header("Access-Control-Request-Headers");
        res.add_header("Access-Control-Allow-Headers",
                       asked.empty() ? "authorization, content-type, x-api-key, anthropic-version" : std::string(asked));
        res.add_header("Access-Control-Max-Age", "600");
        res.send(204, "", "");
        return true;
      }
    }
    // Authentication on every endpoint but /health, by "Authorization: Bearer KEY" or (as
    // Anthropic clients send it) "x-api-key: KEY".
    if (req.path == "/health" || !options.api_keys.enabled()) return false;
    auto id = options.api_keys.check(req.header("Authorization"));
    if (!id && req.has_header("x-api-key")) id = options.api_keys.check_key(req.header("x-api-key"));
    if (!id) {
      res.add_header("WWW-Authenticate", "Bearer");
      refuse(req,
             {401, "Incorrect or missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
              "authentication_error", "invalid_api_key"},
             res);
      return true;
    }
    req.key_id = *id;
    return false;
  }

  // A generation request refused before it ran: the error response (in the endpoint's API
  // style), counted and audited.
  void reject(const HttpRequest& req, HttpResponse& res, const Status& st, const std::string& model,
              int64_t prompt_tokens, Clock::time_point start) {
    audit_request(req, model, http_error_for(st.code()).http_status, prompt_tokens, 0, "", start, "", "");
    send_error(res, st, api_style_for_path(req.path));
  }
  // Common front half of every generation endpoint: submission, with the output steering of a
  // chat request (tool_choice, thinking budget).
  Result<std::shared_ptr<runtime::Generation>> submit(const GenerationOptions& g, std::vector<int32_t> prompt,
                                                      const text::OutputSteering& steer = {},
                                                      std::vector<int64_t> message_starts = {}) {
    runtime::GenerationRequest gr;
    gr.prompt = std::move(prompt);
    gr.message_starts = std::move(message_starts);
    gr.sampling = g.sampling;
    gr.max_tokens = g.max_tokens > 0 ? g.max_tokens : options.default_max_tokens;
    gr.stop_token_ids = g.stop_token_ids;
    gr.ignore_eos = g.ignore_eos;
    text::apply_steering(steer, gr);
    return scheduler.submit(std::move(gr));
  }

  Status check_model(const std::string& model) const {
    if (model != options.model_id)
      return Status::not_found("The model '" + model + "' does not exist; this server serves '" + options.model_id + "'");
    return {};
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
  std::optional<ChatRun> start_chat(const HttpRequest& req, HttpResponse& res, Result<ChatRequest> parsed,
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
    // The audit log's prompt text is the rendered prompt, as the model reads it.
    if (options.audit_content)
      for (int32_t id : *prompt) c.prompt_text += codec.token_text(id);
    const text::OutputSteering steer = codec.steering(r);
    std::vector<int64_t> starts = codec.message_starts(*prompt);
    auto gen = submit(r.gen, std::move(prompt).value(), steer, std::move(starts));
    if (!gen.ok()) {
      reject(req, res, gen.status(), r.gen.model, c.prompt_tokens, start);
      return std::nullopt;
    }
    c.run = std::make_shared<ResponseRun>(*gen, codec, metrics, r.gen.stop, options.stop, codec.new_output_parser(r), start,
                                          r.gen.logprobs, steer.answer_start_token);
    return c;
  }

  // Non-streaming: reads the generation to its end, handing every piece to `on_piece`. A client
  // that hangs up meanwhile cancels it (its sequence is freed at the scheduler's next step); the
  // request is then audited as cancelled (status 499), nothing is sent (the transport counts
  // the 499) and false returned.
  bool wait_for_answer(const HttpRequest& req, HttpResponse& res, ResponseRun& run,
                       const std::string& model, int64_t prompt_tokens, Clock::time_point start,
                       const std::string& prompt_text, const std::function<void(ResponseRun::Piece&)>& on_piece) {
    while (!run.finished()) {
      auto p = run.poll(kPollInterval);
      on_piece(p);
      if (run.finished() || !res.peer_closed()) continue;
      run.cancel();
      while (!run.finished()) run.poll(kPollInterval);
      audit_request(req, model, kClientClosedRequest, prompt_tokens, run.final_event().generated_tokens, "cancelled",
                    start, prompt_text, run.output_text());
      return false;
    }
    return true;
  }

  // Streaming: an SSE stream of what `next` appends to its argument at each progress of the
  // generation (it returns true with the last frames). A client that goes away ends the stream
  // and cancels the generation; either way the request is audited when the stream ends.
  void stream_events(const HttpRequest& req, HttpResponse& res, ResponseRun& run, ApiStyle style,
                     const std::string& model, int64_t prompt_tokens, const std::string& prompt_text,
                     Clock::time_point start, const std::function<bool(std::string&)>& next) {
    res.add_header("Cache-Control", "no-cache");
    res.add_header("X-Accel-Buffering", "no");
    bool aborted = false;
    if (res.begin(200, "text/event-stream")) {
      Clock::time_point last_write = Clock::now();
      for (;;) {
        std::string out;
        const bool last = next(out);
        if (!flush_sse(res, out, last_write, run, style)) {
          aborted = true;
          break;
        }
        if (last) {
          res.end();
          break;
        }
      }
    } else {
      aborted = true;
    }
    if (aborted) metrics.count_aborted_stream(req.path);
    // A stream cut short still counts (and audits) the tokens it generated: the scheduler ends
    // the cancelled sequence at its next step and reports them.
    if (!run.finished()) {
      run.cancel();
      while (!run.finished()) run.poll(kPollInterval);
    }
    audit_request(req, model, 200, prompt_tokens, run.final_event().generated_tokens,
                  run.finish_reason(), start, prompt_text, run.output_text());
  }

  // A failed generation after submission (an engine error): the error response, audited.
  void fail_generation(const HttpRequest& req, HttpResponse& res, const ChatRun& c, Clock::time_point start) {
    const auto& f = c.run->final_event();
    audit_request(req, c.request->gen.model, 500, c.prompt_tokens, f.generated_tokens, "", start, c.prompt_text,
                  c.run->output_text());
    send_error(res, f.status, api_style_for_path(req.path));
  }

  // ---- /v1/chat/completions (server/openai.h builds the response) ----
  void handle_chat(const HttpRequest& req, HttpResponse& res) {
    const auto start = Clock::now();
    auto chat = start_chat(req, res, parse_chat_request(req.body, codec.encoder_revision()), start);
    if (!chat) return;
    auto r = chat->request;
    auto run = chat->run;
    const int64_t n_prompt = chat->prompt_tokens;
    ChatCompletion completion(new_id("chatcmpl-"), unix_seconds(), r->gen.model, r->thinking.on(),
                              r->gen.logprobs);

    if (!r->gen.stream) {
      if (!wait_for_answer(req, res, *run, r->gen.model, n_prompt, start, chat->prompt_text,
                           [&](ResponseRun::Piece& p) { completion.add(p.chat); }))
        return;
      const auto& f = run->final_event();
      if (f.finish == FinishReason::error) return fail_generation(req, res, *chat, start);
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start,
                    chat->prompt_text, run->output_text());
      res.send(200, "application/json",
               dump(completion.response(run->finish_reason(), run->all_logprobs(), openai_usage(f))));
      return;
    }

    // Streaming: one SSE frame per delta, then finish_reason, usage (if asked) and [DONE].
    bool started = false;
    stream_events(req, res, *run, ApiStyle::openai, r->gen.model, n_prompt, chat->prompt_text, start,
                  [&](std::string& out) {
                    if (!started) {
                      started = true;
                      out += completion.stream_start();
                    }
                    auto p = run->poll(kPollInterval);
                    out += completion.stream_piece(p.chat, p.logprobs);
                    if (p.finished)
                      out += stream_finish(completion, run->final_event(), run->finish_reason(), r->gen.include_usage);
                    return p.finished;
                  });
  }

  // ---- /v1/messages (Anthropic) ----
  void handle_messages(const HttpRequest& req, HttpResponse& res) {
    const auto start = Clock::now();
    auto chat = start_chat(req, res, parse_messages_request(req.body, codec.encoder_revision()), start);
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
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start,
                    chat->prompt_text, run->output_text());
      res.send(200, "application/json",
               dump(message_json(id, r->gen.model, blocks.content(), stop_reason(), run->stop_sequence(), usage())));
      return;
    }

    // Streaming: message_start, ping, content_block_start / _delta / _stop per block,
    // message_delta (stop_reason, final usage), message_stop.
    bool started = false;
    MessageBlocks blocks;
    stream_events(
        req, res, *run, ApiStyle::anthropic, r->gen.model, n_prompt, chat->prompt_text, start,
        [&](std::string& out) {
          if (!started) {
            started = true;
            const json message = message_json(id, r->gen.model, json::array(), "", "", messages_usage(n_prompt, 0, 0));
            out += messages_sse({{"type", "message_start"}, {"message", message}});
            out += messages_sse({{"type", "ping"}});
          }
          auto p = run->poll(kPollInterval);
          for (const json& e : blocks.push(p.chat)) out += messages_sse(e);
          if (p.finished) {
            const auto& f = run->final_event();
            if (f.finish == FinishReason::error) {
              out += sse_event("error", anthropic_error_body(500, f.status.message()));
            } else {
              for (const json& e : blocks.finish()) out += messages_sse(e);
              json delta = {{"stop_reason", stop_reason()}, {"stop_sequence", nullptr}};
              if (!run->stop_sequence().empty()) delta["stop_sequence"] = run->stop_sequence();
              out += messages_sse({{"type", "message_delta"}, {"delta", delta}, {"usage", usage()}});
              out += messages_sse({{"type", "message_stop"}});
            }
          }
          return p.finished;
        });
  }

  // ---- /v1/responses (OpenAI Responses API: server/responses.h builds the response) ----
  void handle_responses(const HttpRequest& req, HttpResponse& res) {
    const auto start = Clock::now();
    auto parsed = parse_responses_request(req.body, codec.encoder_revision(), responses);
    if (!parsed.ok()) {
      const int status = http_error_for(parsed.status().code()).http_status;
      audit_request(req, "", status, 0, 0, "", start, "", "");
      return res.send(status, "application/json", responses_error_body(parsed.status()));
    }
    auto rr = std::make_shared<ResponsesRequest>(std::move(parsed).value());
    ResponseBuilder builder(new_id("resp_"), unix_seconds(), *rr);
    auto chat = start_chat(req, res, std::move(rr->chat), start);
    if (!chat) return;
    auto run = chat->run;
    const std::string& model = chat->request->gen.model;
    // The closing events, once the generation has finished; a finished response is kept for
    // previous_response_id.
    auto finish = [&] {
      const auto& f = run->final_event();
      auto events = builder.finish(f.finish, {f.prompt_tokens, f.cached_tokens, f.generated_tokens, run->reasoning_tokens()},
                                   f.status.message());
      remember_response(responses, *rr, builder);
      return events;
    };

    if (!chat->request->gen.stream) {
      if (!wait_for_answer(req, res, *run, model, chat->prompt_tokens, start, chat->prompt_text,
                           [&](ResponseRun::Piece& p) { builder.push(p.chat); }))
        return;
      if (run->final_event().finish == FinishReason::error) return fail_generation(req, res, *chat, start);
      finish();
      audit_request(req, model, 200, chat->prompt_tokens, run->final_event().generated_tokens, run->finish_reason(),
                    start, chat->prompt_text, run->output_text());
      res.send(200, "application/json", dump(builder.response()));
      return;
    }

    bool started = false;
    stream_events(req, res, *run, ApiStyle::openai, model, chat->prompt_tokens, chat->prompt_text, start,
                  [&](std::string& out) {
                    if (!started) {
                      started = true;
                      for (const json& e : builder.start()) out += responses_sse(e);
                    }
                    auto p = run->poll(kPollInterval);
                    for (const json& e : builder.push(p.chat)) out += responses_sse(e);
                    if (p.finished)
                      for (const json& e : finish()) out += responses_sse(e);
                    return p.finished;
                  });
  }

  // ---- /v1/messages/count_tokens (Anthropic) ----
  void handle_count_tokens(const HttpRequest& req, HttpResponse& res) {
    auto parsed = parse_messages_request(req.body, codec.encoder_revision(), /*count_tokens=*/true);
    if (!parsed.ok()) return send_error(res, parsed.status(), ApiStyle::anthropic);
    if (Status st = check_model(parsed->gen.model); !st.ok()) return send_error(res, st, ApiStyle::anthropic);
    auto prompt = codec.encode_chat(*parsed);
    if (!prompt.ok()) return send_error(res, prompt.status(), ApiStyle::anthropic);
    res.send(200, "application/json", dump({{"input_tokens", prompt->size()}}));
  }

  // ---- /v1/completions (server/openai.h builds the response) ----
  void handle_completion(const HttpRequest& req, HttpResponse& res) {
    const auto start = Clock::now();
    auto parsed = parse_completion_request(req.body);
    if (!parsed.ok()) return reject(req, res, parsed.status(), "", 0, start);
    auto r = std::make_shared<CompletionRequest>(std::move(parsed).value());
    if (Status st = check_model(r->gen.model); !st.ok()) return reject(req, res, st, r->gen.model, 0, start);
    std::vector<int32_t> prompt = r->prompt_ids.empty() ? codec.encode_text(r->prompt) : r->prompt_ids;
    const int64_t n_prompt = int64_t(prompt.size());
    auto gen = submit(r->gen, std::move(prompt));
    if (!gen.ok()) return reject(req, res, gen.status(), r->gen.model, n_prompt, start);
    auto run = std::make_shared<ResponseRun>(*gen, codec, metrics, r->gen.stop, options.stop, nullptr, start,
                                             r->gen.logprobs);
    TextCompletion completion(new_id("cmpl-"), unix_seconds(), r->gen.model, r->gen.logprobs);
    const std::string echo = r->echo ? r->prompt : std::string();
    const std::string prompt_text = options.audit_content ? r->prompt : std::string();

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
      audit_request(req, r->gen.model, 200, n_prompt, f.generated_tokens, run->finish_reason(), start, prompt_text,
                    run->output_text());
      res.send(200, "application/json",
               dump(completion.response(text, run->finish_reason(), run->all_logprobs(), openai_usage(f))));
      return;
    }

    bool echoed = echo.empty();
    stream_events(req, res, *run, ApiStyle::openai, r->gen.model, n_prompt, prompt_text, start,
                  [&](std::string& out) {
                    if (!echoed) {
                      echoed = true;
                      out += completion.stream_piece(echo, nullptr);
                    }
                    auto p = run->poll(kPollInterval);
                    if (!p.text.empty() || !p.logprobs.empty()) out += completion.stream_piece(p.text, p.logprobs);
                    if (p.finished)
                      out += stream_finish(completion, run->final_event(), run->finish_reason(), r->gen.include_usage);
                    return p.finished;
                  });
  }

  // ---- the cheap routes ----
  // 503 while a step has run past options.health_step_timeout: the engine (under mpirun, the
  // world of ranks) cannot complete it, and a load balancer should stop sending requests here.
  void handle_health(const HttpRequest&, HttpResponse& res) {
    const double running = scheduler.stats().step_running_s;
    const double limit = std::chrono::duration<double>(options.health_step_timeout).count();
    if (limit > 0 && running > limit) {
      char reason[160];
      std::snprintf(reason, sizeof reason, "a step has been running for %.1f s (over --health-step-timeout %g)",
                    running, limit);
      res.send(503, "application/json", dump({{"status", "unhealthy"}, {"reason", reason}}));
      return;
    }
    res.send(200, "application/json", "{\"status\":\"ok\"}");
  }

  void handle_metrics(const HttpRequest&, HttpResponse& res) {
    res.send(200, "text/plain; version=0.0.4", metrics.render(scheduler.stats()));
  }

  void handle_models(const HttpRequest&, HttpResponse& res) {
    json m = {{"id", options.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "dsv4"},
              {"max_model_len", scheduler.max_context()}};
    res.send(200, "application/json", dump({{"object", "list"}, {"data", json::array({m})}}));
  }

  void handle_model(const HttpRequest& req, HttpResponse& res) {
    constexpr std::string_view kPrefix = "/v1/models/";
    if (Status st = check_model(req.path.substr(kPrefix.size())); !st.ok()) return send_error(res, st);
    res.send(200, "application/json",
             dump({{"id", options.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "dsv4"}}));
  }

  void no_route(const HttpRequest& req, HttpResponse& res) {
    res.send(404, "application/json",
             error_body(api_style_for_path(req.path), 404, "No route for " + req.method + " " + req.path,
                        "invalid_request_error", "not_found"));
  }
};

// Every route. A new endpoint is one line here and its handler in Impl.
std::span<const HttpServer::Impl::Route> HttpServer::Impl::routes() {
  static constexpr Route kRoutes[] = {
      {"GET", "/health", &Impl::handle_health, false},
      // The root answers too (with a key, when one is required): Claude Code checks that its
      // base URL is reachable with HEAD / (issue #16), and HEAD is served by every GET route.
      {"GET", "/", &Impl::handle_health, false},
      {"GET", "/metrics", &Impl::handle_metrics, false},
      {"GET", "/v1/models", &Impl::handle_models, false},
      {"GET", "/v1/models/{id}", &Impl::handle_model, false},
      {"POST", "/v1/chat/completions", &Impl::handle_chat, true},
      {"POST", "/v1/completions", &Impl::handle_completion, true},
      {"POST", "/v1/messages", &Impl::handle_messages, true},
      {"POST", "/v1/messages/count_tokens", &Impl::handle_count_tokens, true},
      {"POST", "/v1/responses", &Impl::handle_responses, true},
  };
  return kRoutes;
}

HttpServer::HttpServer(runtime::Scheduler& scheduler, const TextCodec& codec, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, codec, std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::bind() {
  if (!impl_->options.audit_log_path.empty()) {
    DSV4_ASSIGN_OR_RETURN(impl_->audit, AuditLog::open(impl_->options.audit_log_path, impl_->options.audit_content));
  }
  return impl_->http.bind(impl_->options.host, impl_->options.port);
}

int HttpServer::port() const { return impl_->http.port(); }

Status HttpServer::run() { return impl_->http.run(); }

void HttpServer::stop() {
  if (impl_) impl_->http.stop();
}

}  // namespace dsv4::server


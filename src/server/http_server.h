// `dsv4 serve`: the OpenAI- and Anthropic-compatible HTTP API over one Scheduler.
//
//   GET  /health                     liveness, never needs a key; 503 while a step has been running
//                                    longer than ServerOptions::health_step_timeout
//   GET  /                           the same, with the key when one is required (HEAD / too)
//   GET  /metrics                    Prometheus text
//   GET  /v1/models                  the one served model
//   POST /v1/chat/completions        messages (+ tools), SSE streaming, reasoning_content, tool_calls
//   POST /v1/completions             raw text or token-id prompt
//   POST /v1/messages                Anthropic Messages API (server/anthropic.h): content blocks,
//                                    tool_use / tool_result, thinking, Anthropic SSE events
//   POST /v1/messages/count_tokens   the prompt's token count
//   POST /v1/responses               OpenAI Responses API (server/responses.h): input items,
//                                    function tools, reasoning items, previous_response_id,
//                                    semantic SSE events
//
// Before any route runs, every request passes the edge checks (server/request_guard.h): its Host
// must be a local name, the bound address, the address it reached or an --allowed-host (DNS
// rebinding); a browser's Origin must be a --cors-origin (CSRF); a body comes only with POST,
// as application/json, framed by Content-Length or chunked and never over --max-body-bytes,
// however it is framed. A refused request (and a failed authentication) is answered, audited
// with the client's address and its connection closed: its unread body must not be taken for
// a next request.
//
// The transport (server/http_transport.h: Boost.Beast, event-driven, deadlines and limits per
// connection) hands each request to a handler here through server/http_exchange.h. Handlers
// that generate run on a worker thread: they parse and validate JSON into typed requests
// (server/api.h), render and tokenize through the TextCodec, submit token ids (and the output
// steering of tool_choice) to the scheduler, and turn its events into JSON or SSE frames. A
// client that goes away cancels its request, streaming or not (the scheduler frees the
// sequence at its next step).
//
// Thread-safety: bind() and run() from one thread; stop() from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/scheduler.h"
#include "server/auth.h"
#include "server/http_transport.h"
#include "server/text_codec.h"

namespace dsv4::server {

struct ServerOptions {
  std::string host = "127.0.0.1";   // loopback unless told otherwise
  int port = 8000;                  // 0 = any free port (see HttpServer::port)
  std::string model_id;             // the name clients send as "model"
  ApiKeys api_keys;                 // empty = no authentication
  size_t max_body_bytes = 8u << 20; // larger bodies get 413, whatever their framing
  std::vector<std::string> allowed_hosts;  // Host names accepted beyond the local ones
  std::vector<std::string> cors_origins;   // browser origins allowed (none by default)
  std::string audit_log_path;       // empty = no audit log
  bool audit_content = false;       // also log prompt and output text
  // Worker threads for generating requests (429 when all are busy); 0 = enough for every
  // running and queued request.
  int http_threads = 0;
  ConnectionLimits limits;          // deadlines and caps per connection (server/http_transport.h)
  // Cap for requests that give no max_tokens (0 = until EOS or the context is full).
  int64_t default_max_tokens = 4096;
  // Texts that end every answer as the model's end of turn would (finish "stop", Anthropic's
  // end_turn, Responses' completed), for a model that does not end its turns with EOS; the
  // client's own stop strings still work as before.
  std::vector<std::string> stop;
  // /health answers 503 while one engine step has been running longer than this (0 = never): a
  // stuck step, or under mpirun a rank that does not answer until the step deadline ends the job.
  std::chrono::milliseconds health_step_timeout{120000};
};

class HttpServer {
 public:
  HttpServer(runtime::Scheduler& scheduler, const TextCodec& codec, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens the audit log and binds the socket. Errors: io_error (address in use, bad host,
  // unwritable audit log).
  Status bind();
  int port() const;
  // Serves until stop(). REQUIRES: bind() succeeded.
  Status run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv4::server

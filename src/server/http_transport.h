// The HTTP/1.1 transport of `dsv4 serve`: connections, request parsing, deadlines and the
// worker pool, under the handlers of server/http_exchange.h.
//
// Built on Boost.Beast over Boost.Asio (Debian's libboost1.81-dev): header-only, so nothing to
// link or vendor; packaged and patched by Debian; and asynchronous, with a deadline on each
// operation. The transport it replaces (cpp-httplib 0.11) held one thread per connection, so
// ~150 clients sending a header byte a second, or 500 idle keep-alive connections, left no
// thread for /health or real requests, and it read chunked bodies past any limit (issue #15).
//
// One I/O thread (the caller of run()) accepts connections, reads each request's head and
// body, waits on idle keep-alive connections and writes the cheap routes' answers, never
// blocking: a slow or idle client costs a socket and a few KiB of buffer, not a thread. Only
// handlers that generate run on a bounded worker pool; when every worker is busy a request is
// answered 429 at once (HttpApp::refuse) rather than queued.
//
// Per connection:
//   - a request's head must be complete within header_timeout of its connection (or, on a
//     kept-alive connection, of its first byte) and within max_header_bytes (431 beyond);
//   - its body within body_timeout, and within the body limit however it is framed (the
//     parser counts chunked bodies as it reads them: 413 and the connection closed, the rest
//     unread);
//   - a kept-alive connection waits at most idle_timeout for its next request and serves at
//     most 100;
//   - every write of a response or stream must complete within write_timeout: a client that
//     stops reading is cut off, and its stream's write() fails so that the handler cancels
//     its generation.
// Beyond max_connections open connections a new one gets 503 (Retry-After) and is closed. The
// listen backlog is the system's maximum (SOMAXCONN), so bursts queue in the kernel.
//
// Thread-safety: bind() and run() from one thread; stop() from any thread. stop() closes the
// listener and every connection that is not being answered; requests being answered finish
// (scheduler shutdown ends their generations) and run() returns once they have.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"
#include "server/http_exchange.h"
#include "server/request_guard.h"

namespace dsv4::server {

struct ConnectionLimits {
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds idle_timeout{5'000};
  std::chrono::milliseconds write_timeout{10'000};
  size_t max_header_bytes = 32u << 10;
  int max_connections = 0;  // 0 = from the process's descriptor limit (RLIMIT_NOFILE), at most 4096
  // Memory for request bodies being received, all connections together: each body reserves
  // its Content-Length (a chunked one: the body limit) while it is read; a body that does not
  // fit gets 503 with Retry-After. Bodies being answered are bounded by the worker threads.
  size_t max_pending_body_bytes = 256u << 20;
};

// Where a request goes once its head has passed HttpApp::accept.
struct HttpRoute {
  HttpHandler handler;     // null: accept() has answered it
  bool on_worker = false;  // true: generates (a worker thread); false: cheap, on the I/O thread
};

// What the transport asks of the server above it (HttpServer). Called on the I/O thread unless
// said otherwise; nothing here may block.
class HttpApp {
 public:
  virtual ~HttpApp() = default;
  // A request's head is in (its body not yet read): answer it here (a refusal, a preflight),
  // or return the route whose handler gets it once its body is read.
  virtual HttpRoute accept(HttpRequest& head, HttpResponse& res) = 0;
  // The transport refuses a request itself (a malformed head or body, a body over the limit,
  // no free worker, a handler that failed): answer `r` and close the connection.
  virtual void refuse(const HttpRequest& req, const Refusal& r, HttpResponse& res) = 0;
  // A response's status is decided (any thread), just before it is written; 499 for a request
  // whose client left before its answer.
  virtual void answered(const HttpRequest& req, int status) = 0;
};

struct TransportOptions {
  ConnectionLimits limits;
  size_t max_body_bytes = 8u << 20;
  int worker_threads = 1;
};

class HttpTransport {
 public:
  HttpTransport(HttpApp& app, TransportOptions options);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Listens on host:port (port 0: any free port). Errors: io_error (address in use, bad host).
  Status bind(const std::string& host, int port);
  int port() const;
  // Serves until stop(). REQUIRES: bind() succeeded.
  Status run();
  void stop();

  struct Impl;  // public only for the connection classes in http_transport.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv4::server

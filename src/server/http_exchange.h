// One HTTP exchange as the API handlers see it, whatever carries it (server/http_transport.h):
// the request (method, path, headers, the whole body, the client's address) and a response sink.
//
// A handler is `void(const HttpRequest&, HttpResponse&)`. It answers in one of two ways:
//   - a whole response:  res.send(200, "application/json", body);
//   - a stream:          res.begin(200, "text/event-stream"); while (...) res.write(frame); res.end();
//     write() returns false once the client is gone (or stopped reading past the write
//     deadline): the handler then stops, cancelling its work.
// A handler whose client went away before the answer (peer_closed(), for a long non-streaming
// request) may return without answering; the exchange is then recorded as 499.
// Headers for the response (CORS, Retry-After, ...) are added before send() / begin().
//
// Threads: handlers that generate run on a worker thread of a bounded pool; begin(), write()
// and end() block there until the bytes are handed to the kernel or the write deadline passes.
// Cheap handlers run on the transport's I/O thread and may only send() (which never blocks).
// peer_closed() may be called from the handler's thread at any time.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4::server {

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method;                // "GET", "POST", ...
  std::string path;                  // the target without its query, percent-decoded
  int version = 11;                  // 10 = HTTP/1.0, 11 = HTTP/1.1
  std::vector<HttpHeader> headers;   // as sent, in order
  std::string body;                  // the whole body (empty without one)
  std::string client;                // the peer, "address:port" (IPv6 addresses in brackets)
  std::string local_addr;            // the address the client connected to (numeric)
  std::string key_id;                // the API key's id once authenticated (server/auth.h), else empty

  // Header lookups compare names without case. header(): the first value, or "" when absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  size_t header_count(std::string_view name) const;
};

class HttpResponse {
 public:
  virtual ~HttpResponse() = default;
  // A header for the response not yet sent or begun.
  virtual void add_header(std::string name, std::string value) = 0;
  // Ends the connection after this response (a refused request's body may be unread).
  virtual void close_after() = 0;

  // The whole response, with a Content-Length. Once per exchange, instead of a stream.
  virtual void send(int status, std::string_view content_type, std::string body) = 0;

  // A stream without a length: chunked for HTTP/1.1 clients; an HTTP/1.0 client's stream ends
  // by closing the connection. Each returns false once the client is gone.
  virtual bool begin(int status, std::string_view content_type) = 0;
  virtual bool write(std::string_view data) = 0;
  virtual void end() = 0;

  // True once the client has closed or reset its connection (or a write failed).
  virtual bool peer_closed() const = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

}  // namespace dsv4::server

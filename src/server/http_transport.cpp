#include "server/http_transport.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/errors.h"

namespace dsv4::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// A kept-alive connection serves this many requests, then closes (clients reconnect).
constexpr size_t kKeepAliveRequests = 100;
// A connection closed after a response whose request may be partly unread is drained this
// long / this far first: closing a socket with unread input sends a reset, which can destroy
// the response before the client has read it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 256u << 10;
// After a failed accept (out of descriptors), the listener waits this long before the next.
constexpr std::chrono::milliseconds kAcceptRetry{50};
// Descriptors kept for everything else (model files, the audit log, the event loop).
constexpr rlim_t kReservedDescriptors = 256;
constexpr int kMaxDefaultConnections = 4096;

std::string numeric_host(const asio::ip::address& a) {
  return a.to_string();
}

// "address:port", IPv6 addresses in brackets.
std::string endpoint_text(const tcp::endpoint& e) {
  const std::string host = numeric_host(e.address());
  return (e.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(e.port());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of a request target: the query cut off, %XX escapes decoded (a malformed escape
// stays as sent).
std::string target_path(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string out;
  out.reserve(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    const int hi = target[i] == '%' && i + 2 < target.size() ? hex_digit(target[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit(target[i + 2]) : -1;
    if (lo >= 0) {
      out += char(hi * 16 + lo);
      i += 2;
    } else {
      out += target[i];
    }
  }
  return out;
}

int default_max_connections() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return kMaxDefaultConnections;
  if (r.rlim_cur <= 2 * kReservedDescriptors) return int(r.rlim_cur / 2);
  return int(std::min<rlim_t>(r.rlim_cur - kReservedDescriptors, kMaxDefaultConnections));
}

// Why a request whose head Beast could not parse is refused.
Refusal head_refusal(const error_code& ec, size_t max_header_bytes) {
  if (ec == http::error::header_limit)
    return {431, "the request's headers are larger than the server accepts (" + std::to_string(max_header_bytes) +
                     " bytes)",
            "invalid_request_error", "request_header_fields_too_large"};
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length)
    return {400, "the request's Content-Length is not a valid length (one non-negative decimal number)",
            "invalid_request_error", "invalid_request"};
  if (ec == http::error::bad_transfer_encoding)
    return {400, "a request must not have both Content-Length and Transfer-Encoding, nor two Transfer-Encodings",
            "invalid_request_error", "invalid_request"};
  return {400, "the request is not valid HTTP/1.1 (" + ec.message() + ")", "invalid_request_error", "invalid_request"};
}

// Handlers that generate: at most `n` at once, each on a thread of its own; no waiting line
// (a request finds a free worker or is refused).
class WorkerPool {
 public:
  explicit WorkerPool(int n) : size_(n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // False when every worker is busy.
  bool try_run(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (busy_ >= size_) return false;
      ++busy_;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
  }

  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  int busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class Session;

}  // namespace

struct HttpTransport::Impl {
  // Open connections: counted for the cap, reached by stop(). A session may end on a worker
  // thread (its last reference), hence the lock. (First: destroyed after the event loop.)
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  HttpApp& app;
  TransportOptions options;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<WorkerPool> pool;
  int bound_port = -1;
  int max_connections = 0;
  std::atomic<bool> stopping{false};
  bool stopped = false;   // I/O thread: stop() has run there
  int on_workers = 0;     // I/O thread: handlers given to the pool and not yet returned
  size_t pending_body_bytes = 0;  // I/O thread: reserved by the bodies being read

  Impl(HttpApp& a, TransportOptions o) : app(a), options(std::move(o)) {
    max_connections = options.limits.max_connections > 0 ? options.limits.max_connections : default_max_connections();
  }

  void accept();
  void refuse_over_capacity(tcp::socket& socket);
  void shut_down();
  void handler_returned() {
    if (--on_workers == 0 && stopped) work.reset();
  }
  bool on_io_thread() { return io.get_executor().running_in_this_thread(); }
};

namespace {

// One connection, from accept to close. Its socket and buffers are used on the I/O thread only;
// a worker thread's writes are posted there. The descriptor is closed only when the session is
// destroyed (after the last exchange released it), so a handler's peer_closed() never polls a
// descriptor that was reused; failures and deadlines shut the socket down instead.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpTransport::Impl& t, tcp::socket socket)
      : t_(t), socket_(std::move(socket)), timer_(t.io), buffer_(t.options.limits.max_header_bytes + (64u << 10)) {
    error_code ec;
    fd_ = socket_.native_handle();
    socket_.set_option(tcp::no_delay(true), ec);
    if (auto e = socket_.remote_endpoint(ec); !ec) client_ = endpoint_text(e);
    if (auto e = socket_.local_endpoint(ec); !ec) local_addr_ = numeric_host(e.address());
  }
  ~Session() {
    std::lock_guard<std::mutex> lock(t_.sessions_mu);
    t_.sessions.erase(this);
  }

  void start() { read_request(/*first=*/true); }

  // The server stops: a connection that is not being answered (idle, or its request still
  // being read) closes now, one that is closes after its answer.
  void stop() {
    if (phase_ != Phase::answering) abort();
  }

  // Failure, deadline or stop: pending operations end with an error, later ones fail at once.
  void abort() {
    broken_ = true;
    error_code ec;
    socket_.cancel(ec);
    socket_.shutdown(tcp::socket::shutdown_both, ec);
  }

  bool broken() const { return broken_; }

  // Whether the peer has closed or reset the connection (any thread).
  bool peer_closed() const {
    if (broken_) return true;
    pollfd p{fd_, short(POLLIN | POLLRDHUP), 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    // Readable: a pipelined next request (alive) or the end of the stream.
    char c;
    return recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

  // Writes `bytes` under the write deadline, then calls done(ok). I/O thread; one at a time.
  void write(std::shared_ptr<const std::string> bytes, std::function<void(bool)> done) {
    if (broken_) return done(false);
    arm(t_.options.limits.write_timeout);
    asio::async_write(socket_, asio::buffer(*bytes),
                      [self = shared_from_this(), bytes, done = std::move(done)](error_code ec, size_t) {
                        self->disarm();
                        if (ec) self->abort();
                        done(!ec);
                      });
  }

  // The exchange is over (its handler returned, its response is out).
  void exchange_done(bool keep_alive) {
    phase_ = Phase::reading;
    if (keep_alive && !broken_ && !t_.stopping && served_ < kKeepAliveRequests) return read_request(/*first=*/false);
    linger();
  }

  const std::string& client() const { return client_; }
  bool stopping() const { return t_.stopping; }
  size_t served() const { return served_; }

 private:
  enum class Phase { reading, answering };

  void arm(std::chrono::milliseconds d) {
    const uint64_t id = ++deadline_id_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), id](error_code ec) {
      if (!ec && id == self->deadline_id_) self->abort();
    });
  }
  void disarm() {
    ++deadline_id_;
    timer_.cancel();
  }

  void read_request(bool first);
  void read_head();
  void on_head(error_code ec);
  void read_body(std::shared_ptr<class Exchange> ex, HttpRoute route);
  void dispatch(std::shared_ptr<class Exchange> ex, HttpRoute route);
  HttpRequest head() const;

  // Closing after a response: shut down sending (the client sees the end), drain what the
  // client still sends for a moment, then drop the connection.
  void linger() {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (broken_) return;
    arm(kLingerTime);
    drain();
  }
  void drain() {
    socket_.async_read_some(asio::buffer(drain_buf_), [self = shared_from_this()](error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ >= kLingerBytes) {
        self->disarm();
        self->abort();
        return;
      }
      self->drain();
    });
  }

  HttpTransport::Impl& t_;
  tcp::socket socket_;
  int fd_ = -1;
  asio::steady_timer timer_;
  uint64_t deadline_id_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string client_, local_addr_;
  Phase phase_ = Phase::reading;
  size_t served_ = 0;
  std::atomic<bool> broken_{false};
  char drain_buf_[4096];
  size_t drained_ = 0;

  friend class Exchange;
};

// The response side of one request (HttpResponse). Writes from a worker thread are posted to
// the I/O thread and waited for; sends on the I/O thread (cheap routes, refusals) are
// asynchronous, and the exchange ends when both the handler has returned and its write is out.
class Exchange final : public HttpResponse, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Session> s, HttpRequest req, bool keep_alive)
      : s_(std::move(s)), req_(std::move(req)), keep_alive_(keep_alive) {}

  HttpRequest& request() { return req_; }
  bool answered() const { return state_ != State::fresh; }

  void add_header(std::string name, std::string value) override {
    headers_.push_back({std::move(name), std::move(value)});
  }
  void close_after() override { close_after_ = true; }

  void send(int status, std::string_view content_type, std::string body) override {
    if (state_ != State::fresh) return;
    state_ = State::sent;
    http::response<http::string_body> res;
    head(res, status, content_type);
    res.keep_alive(keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    std::ostringstream os;
    if (req_.method == "HEAD")
      os << res.base();
    else
      os << res;
    t().app.answered(req_, status);
    transmit(os.str());
  }

  bool begin(int status, std::string_view content_type) override {
    if (state_ != State::fresh) return false;
    state_ = State::streaming;
    http::response<http::empty_body> res;
    head(res, status, content_type);
    // HTTP/1.0 has no chunked encoding: the stream ends with the connection.
    chunked_ = req_.version >= 11;
    if (chunked_) {
      res.keep_alive(keep_alive());
      res.chunked(true);
    } else {
      close_after_ = true;
      res.keep_alive(false);
    }
    std::ostringstream os;
    os << res.base();
    t().app.answered(req_, status);
    return transmit(os.str());
  }

  bool write(std::string_view data) override {
    if (state_ != State::streaming || failed_) return false;
    if (data.empty()) return true;
    if (!chunked_) return transmit(std::string(data));
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string chunk = size;
    chunk.append(data).append("\r\n");
    return transmit(std::move(chunk));
  }

  void end() override {
    if (state_ != State::streaming) return;
    state_ = State::ended;
    if (chunked_) transmit("0\r\n\r\n");
  }

  bool peer_closed() const override { return failed_ || s_->peer_closed(); }

  // The handler has returned (I/O thread).
  void handler_returned() {
    handler_done_ = true;
    finish();
  }

  // The handler threw, or gave no answer to a client that is still there.
  void internal_error() {
    if (state_ == State::fresh)
      t().app.refuse(req_, {500, "internal error while handling the request", "server_error", "internal_error"}, *this);
    else
      failed_ = true;  // a stream cut short: only closing the connection tells the client
  }

 private:
  enum class State { fresh, sent, streaming, ended };

  HttpTransport::Impl& t() const { return s_->t_; }

  bool keep_alive() const {
    return keep_alive_ && !close_after_ && !s_->stopping() && s_->served() < kKeepAliveRequests;
  }

  template <typename Body>
  void head(http::response<Body>& res, int status, std::string_view content_type) {
    res.version(req_.version >= 11 ? 11 : 10);
    res.result(unsigned(status));
    res.set(http::field::server, "dsv4");
    if (!content_type.empty()) res.set(http::field::content_type, content_type);
    for (const HttpHeader& h : headers_) res.insert(h.name, h.value);
  }

  // Hands bytes to the socket. On a worker thread: waits until written (or failed); on the I/O
  // thread: starts the write and returns.
  bool transmit(std::string bytes) {
    if (failed_) return false;
    auto data = std::make_shared<const std::string>(std::move(bytes));
    if (t().on_io_thread()) {
      write_pending_ = true;
      s_->write(data, [self = shared_from_this()](bool ok) {
        self->write_pending_ = false;
        if (!ok) self->failed_ = true;
        self->finish();
      });
      return true;
    }
    // Shared with the I/O thread's callback, which may still be inside set_value when this
    // thread wakes and returns.
    auto written = std::make_shared<std::promise<bool>>();
    auto result = written->get_future();
    asio::post(t().io, [s = s_, data, written] { s->write(data, [written](bool ok) { written->set_value(ok); }); });
    if (!result.get()) failed_ = true;
    return !failed_;
  }

  // Ends the exchange once the handler has returned and nothing is being written (I/O thread).
  void finish() {
    if (!handler_done_ || write_pending_ || finished_) return;
    if (state_ == State::fresh) {
      if (s_->peer_closed()) {
        t().app.answered(req_, 499);
      } else {
        internal_error();
        if (write_pending_) return;  // finish() runs again once the refusal is out
      }
    }
    finished_ = true;
    const bool complete = !failed_ && (state_ == State::sent || (state_ == State::ended && chunked_));
    s_->exchange_done(complete && keep_alive());
  }

  std::shared_ptr<Session> s_;
  HttpRequest req_;
  const bool keep_alive_;  // the client asked for it
  std::vector<HttpHeader> headers_;
  bool close_after_ = false;
  State state_ = State::fresh;
  bool chunked_ = false;
  std::atomic<bool> failed_{false};
  // I/O thread only:
  bool write_pending_ = false;
  bool handler_done_ = false;
  bool finished_ = false;
};

HttpRequest Session::head() const {
  const auto& msg = parser_->get();
  HttpRequest r;
  r.method = std::string(msg.method_string());
  r.path = target_path(msg.target());
  r.version = msg.version() >= 11 ? 11 : 10;
  for (const auto& f : msg) r.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  r.client = client_;
  r.local_addr = local_addr_;
  return r;
}

void Session::read_request(bool first) {
  parser_.emplace();
  parser_->header_limit(std::uint32_t(t_.options.limits.max_header_bytes));
  // No body limit while the head is read: a Content-Length over the limit is the request
  // guard's 413, with its own message; the limit is set before the body is read.
  parser_->body_limit(boost::none);
  if (first || buffer_.size() > 0) return read_head();
  // A kept-alive connection: the idle deadline until the next request's first byte.
  arm(t_.options.limits.idle_timeout);
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
    self->disarm();
    if (ec || self->broken_) return self->abort();
    self->read_head();
  });
}

void Session::read_head() {
  arm(t_.options.limits.header_timeout);
  http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
    self->disarm();
    self->on_head(ec);
  });
}

void Session::on_head(error_code ec) {
  if (ec) {
    // A closed connection, a deadline, or stop(): nothing to answer.
    if (broken_ || ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
      return abort();
    phase_ = Phase::answering;
    auto ex = std::make_shared<Exchange>(shared_from_this(), head(), false);
    t_.app.refuse(ex->request(), head_refusal(ec, t_.options.limits.max_header_bytes), *ex);
    ex->handler_returned();
    return;
  }
  phase_ = Phase::answering;
  ++served_;
  auto ex = std::make_shared<Exchange>(shared_from_this(), head(), parser_->keep_alive());
  HttpRoute route = t_.app.accept(ex->request(), *ex);
  if (ex->answered() || !route.handler) {
    if (!parser_->is_done()) ex->close_after();  // its body stays unread
    ex->handler_returned();
    return;
  }
  if (parser_->is_done()) return dispatch(std::move(ex), std::move(route));
  phase_ = Phase::reading;
  // A client that waits for leave to send its body (curl does, for large ones).
  const std::string_view expect = ex->request().header("Expect");
  if (beast::iequals(beast::string_view(expect.data(), expect.size()), "100-continue")) {
    auto cont = std::make_shared<const std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    write(cont, [self = shared_from_this(), ex, route = std::move(route)](bool ok) mutable {
      if (!ok) return ex->handler_returned();
      self->read_body(std::move(ex), std::move(route));
    });
    return;
  }
  read_body(std::move(ex), std::move(route));
}

void Session::read_body(std::shared_ptr<Exchange> ex, HttpRoute route) {
  const size_t limit = t_.options.max_body_bytes;
  const auto length = parser_->content_length();
  const size_t reserved = length ? size_t(std::min<uint64_t>(*length, limit)) : limit;
  if (t_.pending_body_bytes + reserved > t_.options.limits.max_pending_body_bytes) {
    phase_ = Phase::answering;
    ex->close_after();  // its body stays unread
    t_.app.refuse(ex->request(),
                  {503, "the server is receiving too many request bodies at once; retry shortly", "server_error",
                   "too_many_pending_bodies"},
                  *ex);
    return ex->handler_returned();
  }
  t_.pending_body_bytes += reserved;
  parser_->body_limit(limit);
  arm(t_.options.limits.body_timeout);
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this(), ex, route = std::move(route), reserved](error_code ec, size_t) mutable {
                     self->t_.pending_body_bytes -= reserved;
                     self->disarm();
                     self->phase_ = Phase::answering;
                     if (ec == http::error::body_limit) {
                       self->t_.app.refuse(ex->request(), body_too_large(self->t_.options.max_body_bytes), *ex);
                     } else if (ec && self->broken_) {
                       // A deadline or stop(): the connection is already shut.
                     } else if (ec) {
                       self->t_.app.refuse(ex->request(),
                                           {400,
                                            "the request body could not be read (malformed chunked encoding, or it "
                                            "ended early)",
                                            "invalid_request_error", "invalid_request"},
                                           *ex);
                     } else {
                       ex->request().body = self->parser_->release().body();
                       return self->dispatch(std::move(ex), std::move(route));
                     }
                     ex->handler_returned();
                   });
}

void Session::dispatch(std::shared_ptr<Exchange> ex, HttpRoute route) {
  auto call = [](const HttpHandler& handler, Exchange& ex) {
    try {
      handler(ex.request(), ex);
    } catch (...) {
      ex.internal_error();
    }
  };
  if (!route.on_worker) {
    call(route.handler, *ex);
    ex->handler_returned();
    return;
  }
  auto job = [call, ex, handler = std::move(route.handler), &t = t_] {
    call(handler, *ex);
    asio::post(t.io, [ex, &t] {
      ex->handler_returned();
      t.handler_returned();
    });
  };
  ++t_.on_workers;
  if (t_.pool->try_run(std::move(job))) return;
  --t_.on_workers;
  t_.app.refuse(ex->request(),
                {429, "the server is busy: every worker is answering a request; retry shortly", "rate_limit_error",
                 "server_busy"},
                *ex);
  ex->handler_returned();
}

}  // namespace

void HttpTransport::Impl::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (ec) {
      // Out of descriptors (or a connection reset before it was accepted): try again shortly
      // rather than spin.
      accept_retry.expires_after(kAcceptRetry);
      accept_retry.async_wait([this](error_code e) {
        if (!e && !stopped) accept();
      });
      return;
    }
    std::shared_ptr<Session> s;
    {
      std::lock_guard<std::mutex> lock(sessions_mu);
      if (int(sessions.size()) < max_connections) {
        s = std::make_shared<Session>(*this, std::move(socket));
        sessions.emplace(s.get(), s);
      }
    }
    if (s)
      s->start();
    else
      refuse_over_capacity(socket);
    accept();
  });
}

void HttpTransport::Impl::refuse_over_capacity(tcp::socket& socket) {
  // Written without waiting (it fits any socket buffer) and closed; not read, not audited: a
  // flood of connections must not become a flood of work.
  static const std::string kBody =
      error_body("the server has too many open connections; retry shortly", "server_error", "too_many_connections");
  const std::string reply = "HTTP/1.1 503 Service Unavailable\r\nServer: dsv4\r\nContent-Type: application/json\r\n"
                            "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                            std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  (void)::send(socket.native_handle(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  app.answered(HttpRequest{}, 503);
}

void HttpTransport::Impl::shut_down() {
  if (stopped) return;
  stopped = true;
  error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    for (auto& [_, w] : sessions)
      if (auto s = w.lock()) open.push_back(std::move(s));
  }
  for (auto& s : open) s->stop();
  if (on_workers == 0) work.reset();
}

HttpTransport::HttpTransport(HttpApp& app, TransportOptions options)
    : impl_(std::make_unique<Impl>(app, std::move(options))) {}

HttpTransport::~HttpTransport() = default;

Status HttpTransport::bind(const std::string& host, int port) {
  auto& acceptor = impl_->acceptor;
  const std::string where = port == 0 ? host + " (any port)" : host + ":" + std::to_string(port);
  error_code ec;
  tcp::resolver resolver(impl_->io);
  auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) return Status::io_error("cannot listen on " + where + ": unknown host");
  const tcp::endpoint at = found.begin()->endpoint();
  acceptor.open(at.protocol(), ec);
  // SO_REUSEADDR lets a restart bind while old connections linger in TIME_WAIT; without
  // SO_REUSEPORT a second server on a busy port fails here instead of sharing its connections.
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(at, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.close(ec);
    return Status::io_error("cannot listen on " + where + " (address in use or not available)");
  }
  impl_->bound_port = acceptor.local_endpoint(ec).port();
  return {};
}

int HttpTransport::port() const { return impl_->bound_port; }

Status HttpTransport::run() {
  Impl& t = *impl_;
  if (!t.acceptor.is_open()) return Status::io_error("the HTTP server is not bound");
  t.pool = std::make_unique<WorkerPool>(std::max(1, t.options.worker_threads));
  t.work.emplace(t.io.get_executor());
  t.accept();
  t.io.run();
  t.pool.reset();
  return {};
}

void HttpTransport::stop() {
  impl_->stopping = true;
  asio::post(impl_->io, [t = impl_.get()] { t->shut_down(); });
}

}  // namespace dsv4::server

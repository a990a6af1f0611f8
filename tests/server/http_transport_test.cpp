// The event-driven transport against clients that try to tie it up (issue #15): slow headers,
// idle keep-alive connections, oversized chunked bodies, bursts, clients that stop reading.
// Each test is bounded to a few seconds; deadlines are shortened where a test waits for one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "server/raw_socket.h"
#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

using namespace test_server;
using Clock = std::chrono::steady_clock;

// One response on a kept-alive connection: the head, then Content-Length bytes of body.
std::string read_response(int fd) {
  std::string in;
  char buf[4096];
  size_t head_end;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in;
    in.append(buf, size_t(n));
  }
  const size_t at = in.find("Content-Length: ");
  const size_t length = at < head_end ? size_t(std::atol(in.c_str() + at + 16)) : 0;
  while (in.size() < head_end + 4 + length) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, size_t(n));
  }
  return in;
}

const std::string kHealth = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// How long a fresh client waits for /health.
Clock::duration time_health(int port) {
  const auto t0 = Clock::now();
  const int fd = connect_to(port, std::chrono::seconds(5));
  send_all(fd, kHealth);
  const int status = status_of(read_response(fd));
  ::close(fd);
  EXPECT_EQ(status, 200);
  return Clock::now() - t0;
}

// Resident memory (VmRSS), and its peak (VmHWM) since reset_peak(), in KiB.
long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return 0;
}
// Linux resets VmHWM to the current RSS when "5" is written to clear_refs.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

// Room for `n` more descriptors (a client and a server end per connection, in one process).
bool descriptors_for(int n) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return false;
  const rlim_t want = rlim_t(2 * n + 256);
  if (r.rlim_cur >= want) return true;
  if (r.rlim_max < want) return false;
  r.rlim_cur = want;
  return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
}

// 150 clients trickling their headers a byte a second hold no thread: /health answers at once.
TEST(HttpTransport, SlowHeaderClientsDoNotStarveOthers) {
  ServerFixture f;
  const int port = f.server->port();
  std::vector<int> slow;
  for (int i = 0; i < 150; ++i) slow.push_back(connect_to(port));
  for (int round = 0; round < 3; ++round) {
    for (int fd : slow) send_all(fd, std::string(1, "GET /health HTTP/1.1"[round]));
    EXPECT_LT(time_health(port), std::chrono::seconds(2)) << "round " << round;
    auto r = f.post("/v1/chat/completions", chat_body("x", 2));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    if (round < 2) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  for (int fd : slow) ::close(fd);
}

// 500 idle keep-alive connections neither block new clients nor their requests.
TEST(HttpTransport, IdleKeepAliveConnectionsDoNotStarveOthers) {
  if (!descriptors_for(520)) GTEST_SKIP() << "not enough file descriptors for 500 connections";
  ServerFixture f;
  const int port = f.server->port();
  std::vector<int> idle;
  for (int i = 0; i < 500; ++i) {
    idle.push_back(connect_to(port));
    send_all(idle.back(), kHealth);
  }
  int answered = 0;
  for (int fd : idle) answered += status_of(read_response(fd)) == 200;
  EXPECT_EQ(answered, 500);
  EXPECT_LT(time_health(port), std::chrono::seconds(2));
  const auto t0 = Clock::now();
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/v1/chat/completions", chat_body("x", 4).dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  // The idle connections are still open and still served.
  send_all(idle.front(), kHealth);
  EXPECT_EQ(status_of(read_response(idle.front())), 200);
  for (int fd : idle) ::close(fd);
}

// A chunked body past the limit is refused once it passes it, and never held whole.
TEST(HttpTransport, ChunkedBodyOverTheLimitIsNotBuffered) {
  ServerOptions o;
  o.max_body_bytes = 1u << 20;
  ServerFixture f(o);
  const bool peak = reset_peak();
  const long before = status_kib("VmRSS:");
  const int fd = connect_to(f.server->port());
  send_all(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  for (int i = 0; i < 48; ++i)  // 3 MiB
    if (send_all(fd, chunk) < chunk.size()) break;
  const std::string reply = read_until_close(fd);
  ::close(fd);
  EXPECT_EQ(status_of(reply), 413) << reply.substr(0, 300);
  // At most the body up to the limit (1 MiB, ~2 MiB at its string's last growth) and a read
  // buffer: less than the 3 MiB sent (a server that buffers it whole peaks well above).
  // (AddressSanitizer's quarantine and shadow memory make resident sizes meaningless.)
#ifndef __SANITIZE_ADDRESS__
  const long grown = status_kib(peak ? "VmHWM:" : "VmRSS:") - before;
  EXPECT_LT(grown, 3072) << "resident memory grew by " << grown << " KiB for a 3 MiB body";
#else
  (void)peak;
  (void)before;
#endif
  EXPECT_LT(time_health(f.server->port()), std::chrono::seconds(2));
}

// A burst of 200 generation requests, far more than the server runs or queues: every one is
// answered 200 or 429 (never reset), whether the scheduler or the worker pool is full.
TEST(HttpTransport, ABurstGetsOnly200sAnd429s) {
  ServerOptions o;
  o.http_threads = 6;
  runtime::SchedulerOptions so;
  so.max_running = 2;
  so.max_queued = 2;
  ServerFixture f(o, so, 512, std::chrono::milliseconds(2));
  const std::string body = chat_body("x", 4).dump();
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> fds;
  for (int i = 0; i < 200; ++i) {
    fds.push_back(connect_to(f.server->port()));
    send_all(fds.back(), request);
  }
  int ok = 0, busy = 0;
  for (int fd : fds) {
    const std::string reply = read_until_close(fd);
    ::close(fd);
    const int status = status_of(reply);
    ok += status == 200;
    busy += status == 429;
    if (status == 429) {
      EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
    }
    if (status != 200 && status != 429) ADD_FAILURE() << "status " << status << ": " << reply.substr(0, 200);
  }
  EXPECT_EQ(ok + busy, 200);
  EXPECT_GT(ok, 0);
  EXPECT_GT(busy, 0);
}

// A client that never finishes its headers, even one that keeps trickling bytes, is
// disconnected at the header deadline; an idle kept-alive connection at the idle deadline.
TEST(HttpTransport, HeaderAndIdleDeadlinesCloseConnections) {
  ServerOptions o;
  o.limits.header_timeout = std::chrono::milliseconds(500);
  o.limits.idle_timeout = std::chrono::milliseconds(300);
  ServerFixture f(o);
  const int fd = connect_to(f.server->port(), std::chrono::seconds(3));
  const auto t0 = Clock::now();
  send_all(fd, "GET /health HTTP/1.1\r\n");
  bool closed = false;
  while (!closed && Clock::now() - t0 < std::chrono::seconds(3)) {
    if (send_all(fd, "X") < 1) break;
    pollfd p{fd, POLLIN, 0};
    char c;
    closed = ::poll(&p, 1, 100) == 1 && ::recv(fd, &c, 1, 0) <= 0;
  }
  const auto waited = Clock::now() - t0;
  ::close(fd);
  EXPECT_GE(waited, std::chrono::milliseconds(400));
  EXPECT_LT(waited, std::chrono::milliseconds(1500));

  const int kept = connect_to(f.server->port(), std::chrono::seconds(3));
  send_all(kept, kHealth);
  EXPECT_EQ(status_of(read_response(kept)), 200);
  const auto t1 = Clock::now();
  char c;
  EXPECT_EQ(::recv(kept, &c, 1, 0), 0);
  EXPECT_LT(Clock::now() - t1, std::chrono::milliseconds(1500));
  ::close(kept);
}

// Headers past max_header_bytes: 431, the connection closed.
TEST(HttpTransport, OversizedHeadersAre431) {
  ServerFixture f;
  const int fd = connect_to(f.server->port());
  send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n");
  EXPECT_EQ(status_of(read_until_close(fd)), 431);
  ::close(fd);
}

// A streaming client that stops reading is cut off at the write deadline and its generation
// cancelled, freeing its slot.
TEST(HttpTransport, AClientThatStopsReadingIsCutOff) {
  ServerOptions o;
  o.limits.write_timeout = std::chrono::milliseconds(300);
  runtime::SchedulerOptions so;
  so.max_running = 1;
  ServerFixture f(o, so, 1 << 16);
  json body = chat_body("x", 60000, true);
  body["logprobs"] = true;
  body["top_logprobs"] = 20;  // ~2 KB a token: the socket buffers fill within seconds
  const std::string payload = body.dump();
  const int fd = connect_to(f.server->port(), std::chrono::seconds(10), /*rcvbuf=*/4096);
  send_all(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload);
  char head[512];
  ASSERT_GT(::recv(fd, head, sizeof head, 0), 0);  // the stream began; from now on nothing is read
  for (int i = 0; i < 300 && f.scheduler->stats().running == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(f.scheduler->stats().running, 1);
  const auto t0 = Clock::now();
  while (f.scheduler->stats().running > 0 && Clock::now() - t0 < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(f.scheduler->stats().running, 0) << "the stalled stream still generates";
  ::close(fd);
  // The slot serves the next request.
  auto r = f.post("/v1/chat/completions", chat_body("y", 2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// Over max_connections a new connection gets 503 with Retry-After at once; /health works again
// when connections close.
TEST(HttpTransport, ConnectionsOverTheCapGet503) {
  ServerOptions o;
  o.limits.max_connections = 8;
  ServerFixture f(o);
  f.client.reset();  // the fixture's own kept-alive connection would count
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<int> held;
  for (int i = 0; i < 8; ++i) held.push_back(connect_to(f.server->port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int extra = connect_to(f.server->port());
  const std::string reply = read_until_close(extra);
  ::close(extra);
  EXPECT_EQ(status_of(reply), 503) << reply;
  EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
  for (int fd : held) ::close(fd);
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    const int fd = connect_to(f.server->port());
    send_all(fd, kHealth);
    served = status_of(read_response(fd)) == 200;
    ::close(fd);
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

// Bodies being received share one memory budget: past it a new body gets 503 with Retry-After
// before any of it is read, and the budget frees as soon as a body has arrived.
TEST(HttpTransport, BodiesOverTheSharedBudgetGet503) {
  ServerOptions o;
  o.max_body_bytes = 1u << 20;
  o.limits.max_pending_body_bytes = 2u << 20;
  ServerFixture f(o);
  const std::string body(600u << 10, ' ');
  auto head = [&](size_t length) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: " + std::to_string(length) + "\r\n\r\n";
  };
  // Three bodies of 600 KiB under way fill 1.8 of the 2 MiB: a fourth does not fit.
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(connect_to(f.server->port()));
    send_all(slow.back(), head(body.size()) + "{");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int extra = connect_to(f.server->port());
  send_all(extra, head(body.size()));
  const std::string reply = read_until_close(extra);
  ::close(extra);
  EXPECT_EQ(status_of(reply), 503) << reply;
  EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("too_many_pending_bodies"), std::string::npos) << reply;
  // A request without a body still passes, and so does a small body that fits.
  EXPECT_LT(time_health(f.server->port()), std::chrono::seconds(2));
  // One sender gives up: its reservation is returned and a new body fits again.
  ::close(slow.back());
  slow.pop_back();
  int status = 0;
  for (int i = 0; i < 50 && status != 400; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int fd = connect_to(f.server->port());
    send_all(fd, head(body.size()) + body);  // blank: not JSON, so 400 once it is read
    status = status_of(read_response(fd));
    ::close(fd);
  }
  EXPECT_EQ(status, 400);
  for (int fd : slow) ::close(fd);
}

// When every worker is busy a generation request gets 429 with Retry-After at once, while
// /health (answered on the I/O thread) still works.
TEST(HttpTransport, BusyWorkersAnswer429AndHealthStillWorks) {
  ServerOptions o;
  o.http_threads = 1;
  ServerFixture f(o, {}, 4096, std::chrono::milliseconds(5));
  std::thread holder([&] {
    httplib::Client c("127.0.0.1", f.server->port());
    c.set_read_timeout(20, 0);
    auto r = c.Post("/v1/chat/completions", chat_body("x", 100).dump(), "application/json");
    EXPECT_TRUE(r && r->status == 200);
  });
  for (int i = 0; i < 300 && f.scheduler->stats().running == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(f.scheduler->stats().running, 1);
  httplib::Client c("127.0.0.1", f.server->port());
  auto busy = c.Post("/v1/chat/completions", chat_body("y", 2).dump(), "application/json");
  expect_openai_error(busy, 429, "busy");
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_LT(time_health(f.server->port()), std::chrono::seconds(1));
  holder.join();
}

// stop() ends idle connections and requests still being read at once: run() returns promptly.
TEST(HttpTransport, StopClosesOpenConnections) {
  auto f = std::make_unique<ServerFixture>();
  const std::string half_body = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":";
  std::vector<int> fds;
  for (int i = 0; i < 30; ++i) {
    fds.push_back(connect_to(f->server->port()));
    send_all(fds.back(), i % 3 == 0 ? kHealth : i % 3 == 1 ? std::string("GET /hea") : half_body);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = Clock::now();
  f.reset();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(1500));
  for (int fd : fds) ::close(fd);
}

}  // namespace
}  // namespace dsv4::server

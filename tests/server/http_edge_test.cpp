// The serving edge against hostile or careless clients (issue #15), over raw sockets where an
// HTTP library would not send what an attacker sends: HTTP/1.0 streams, the listen backlog,
// Retry-After.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

using namespace test_server;

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// Sends as much of `data` as the peer takes; returns the bytes sent.
size_t send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  return sent;
}

// Everything the peer sends until it closes the connection (or 10 s pass).
std::string read_until_close(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

// One raw request on a fresh connection; the whole reply, the connection closed by the server.
std::string round_trip(int port, const std::string& request) {
  const int fd = connect_to(port);
  send_all(fd, request);
  std::string reply = read_until_close(fd);
  ::close(fd);
  return reply;
}

int status_of(const std::string& reply) { return reply.size() > 12 ? std::atoi(reply.c_str() + 9) : 0; }

std::string post_request(const std::string& path, const std::string& body, const std::string& extra_headers,
                         const std::string& version = "HTTP/1.1") {
  return "POST " + path + " " + version + "\r\nHost: 127.0.0.1\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string kJson = "Content-Type: application/json\r\n";

// HTTP/1.0 has no chunked encoding: its streams end with the connection.
TEST(HttpEdge, Http10ClientsGetUnchunkedStreams) {
  ServerFixture f;
  for (const std::string connection : {"", "Connection: Keep-Alive\r\n"}) {
    const std::string reply = round_trip(
        f.server->port(), post_request("/v1/chat/completions", chat_body("x", 4, true).dump(), kJson + connection,
                                       "HTTP/1.0"));
    EXPECT_EQ(status_of(reply), 200) << reply.substr(0, 300);
    const std::string head = reply.substr(0, reply.find("\r\n\r\n"));
    EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
    EXPECT_NE(head.find("text/event-stream"), std::string::npos) << head;
    const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
    EXPECT_EQ(body.rfind("data: {", 0), 0u) << body.substr(0, 100);
    EXPECT_NE(body.find("data: [DONE]\n\n"), std::string::npos) << body;
  }
  // Non-streaming answers have a Content-Length.
  const std::string plain =
      round_trip(f.server->port(), post_request("/v1/chat/completions", chat_body("x", 4).dump(), kJson, "HTTP/1.0"));
  EXPECT_EQ(status_of(plain), 200);
  EXPECT_NE(plain.find("Content-Length:"), std::string::npos) << plain.substr(0, 300);
}

// A burst of connections queues in the listen backlog while the server is busy, rather than
// being refused or reset (issue #15: backlog 5, 42 resets in a burst of 120).
TEST(HttpEdge, ABurstOfConnectionsIsQueuedAndAnswered) {
  test::FakeEngine engine(test::kByteVocab, 512);
  test::ByteCodec codec;
  runtime::Scheduler scheduler(engine, {});
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.model_id = "fake-model";
  HttpServer server(scheduler, codec, o);
  ASSERT_TRUE(server.bind().ok());
  // Not accepting yet: every connection must fit in the backlog.
  constexpr int kBurst = 200;
  std::vector<int> fds;
  for (int i = 0; i < kBurst; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(server.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fds.push_back(fd);
  }
  int connected = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, 2000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++connected;
  }
  if (connected != kBurst) {
    for (int fd : fds) ::close(fd);
    FAIL() << "only " << connected << " of " << kBurst << " connections fit in the listen backlog";
  }
  std::thread serving([&] { (void)server.run(); });
  int answered = 0;
  for (int fd : fds) {
    ::fcntl(fd, F_SETFL, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  }
  for (int fd : fds) {
    if (status_of(read_until_close(fd)) == 200) ++answered;
    ::close(fd);
  }
  EXPECT_EQ(answered, kBurst);
  server.stop();
  serving.join();
}

TEST(HttpEdge, QueueOverflowSaysWhenToRetry) {
  runtime::SchedulerOptions so;
  so.max_running = 1;
  so.max_queued = 0;
  ServerFixture f({}, so, 4096, 5ms);
  std::atomic<bool> started{false};
  std::thread holder([&] {
    httplib::Client c("127.0.0.1", f.server->port());
    c.set_read_timeout(20, 0);
    auto r = c.Post("/v1/chat/completions", chat_body("x", 200).dump(), "application/json");
    started = r && r->status == 200;
  });
  for (int i = 0; i < 300 && f.scheduler->stats().running == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(f.scheduler->stats().running, 1);
  auto r = f.post("/v1/chat/completions", chat_body("y", 2));
  expect_openai_error(r, 429, "");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  auto m = f.post("/v1/messages", messages_body("y", 2));
  expect_anthropic_error(m, 429, "rate_limit_error", "");
  EXPECT_EQ(m->get_header_value("Retry-After"), "1");
  holder.join();
  EXPECT_TRUE(started.load());
}

}  // namespace
}  // namespace dsv4::server

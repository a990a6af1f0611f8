// The serving edge against hostile or careless clients (issue #15), over raw sockets where an
// HTTP library would not send what an attacker sends: body framing and limits, Host and Origin
// checks, media types, HTTP/1.0 streams, the listen backlog, Retry-After.
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

#include "server/raw_socket.h"
#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

using namespace test_server;

// One raw request on a fresh connection; the whole reply, the connection closed by the server.
std::string round_trip(int port, const std::string& request) {
  const int fd = connect_to(port);
  send_all(fd, request);
  std::string reply = read_until_close(fd);
  ::close(fd);
  return reply;
}

std::string post_request(const std::string& path, const std::string& body, const std::string& extra_headers,
                         const std::string& version = "HTTP/1.1") {
  return "POST " + path + " " + version + "\r\nHost: 127.0.0.1\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string kJson = "Content-Type: application/json\r\n";

ServerOptions limited(size_t max_body) {
  ServerOptions o;
  o.max_body_bytes = max_body;
  return o;
}

// A chunked body over --max-body-bytes gets 413 and the server stops reading it: the client
// cannot push 64 MiB (issue #15: a 512 MiB chunked body was buffered whole).
TEST(HttpEdge, ChunkedBodyOverTheLimitIs413AndIsNotReadOn) {
  ServerFixture f(limited(1u << 20));
  const int fd = connect_to(f.server->port());
  send_all(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + kJson +
                   "Transfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
  size_t sent = 0;
  for (int i = 0; i < 1024; ++i) {   // 64 MiB
    const size_t n = send_all(fd, chunk);
    sent += n;
    if (n < chunk.size()) break;
  }
  const std::string reply = read_until_close(fd);
  ::close(fd);
  EXPECT_LT(sent, size_t(32) << 20) << "the server kept reading past the limit";
  EXPECT_EQ(status_of(reply), 413) << reply.substr(0, 300);
  EXPECT_NE(reply.find("--max-body-bytes"), std::string::npos);
  // Within the limit, chunked bodies work.
  const std::string body = chat_body("hi", 3).dump();
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const std::string ok = round_trip(f.server->port(), "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + kJson +
                                                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                                                        size + "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(ok), 200) << ok.substr(0, 300);
  EXPECT_EQ(f.client->Get("/health")->status, 200);
}

// A chunked body to a path that does not exist is capped the same way (httplib reads such
// bodies itself).
TEST(HttpEdge, ChunkedBodyToAnUnknownPathIsCappedToo) {
  ServerFixture f(limited(1u << 16));
  const std::string reply = round_trip(f.server->port(), "POST /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n" + kJson +
                                                           "Transfer-Encoding: chunked\r\n\r\n" + "20000\r\n" +
                                                           std::string(0x20000, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(reply), 413) << reply.substr(0, 300);
}

TEST(HttpEdge, BodyFramingIsChecked) {
  ServerFixture f(limited(1u << 20));
  const int port = f.server->port();
  const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + kJson;
  // Negative or malformed lengths are 400, not 413.
  for (const char* bad : {"-1", "abc", "1e3", "+5", "99999999999999999999999"}) {
    const std::string r = round_trip(port, head + "Content-Length: " + bad + "\r\n\r\n{}");
    EXPECT_EQ(status_of(r), 400) << bad << ": " << r.substr(0, 200);
    EXPECT_NE(r.find("Content-Length"), std::string::npos) << r;
  }
  // Over the limit: 413 at once, without waiting for a body that is never sent.
  const std::string big = round_trip(port, head + "Content-Length: 5000000\r\n\r\n");
  EXPECT_EQ(status_of(big), 413) << big.substr(0, 200);
  EXPECT_EQ(status_of(round_trip(port, head + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}")), 400);
  EXPECT_EQ(status_of(round_trip(port, head + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}")), 400);
  EXPECT_EQ(status_of(round_trip(port, head + "Transfer-Encoding: gzip\r\n\r\n")), 501);
  EXPECT_EQ(status_of(round_trip(port, head + "\r\n")), 411);
  EXPECT_EQ(status_of(round_trip(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")), 400);
  // A bad chunked encoding.
  EXPECT_EQ(status_of(round_trip(port, head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")), 400);
  EXPECT_EQ(f.client->Get("/health")->status, 200);
}

// Web pages may POST forms and text/plain anywhere (CSRF): only JSON bodies are taken.
TEST(HttpEdge, OnlyJsonBodiesAreAccepted) {
  ServerFixture f;
  const std::string body = chat_body("x", 2).dump();
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
    auto r = f.client->Post("/v1/chat/completions", body, type);
    expect_openai_error(r, 415, "application/json");
  }
  EXPECT_EQ(status_of(round_trip(f.server->port(), post_request("/v1/chat/completions", body, ""))), 415);
  expect_anthropic_error(f.client->Post("/v1/messages", messages_body("x", 2).dump(), "text/plain"), 415,
                         "api_error", "application/json");
  EXPECT_EQ(f.client->Post("/v1/chat/completions", body, "application/json; charset=utf-8")->status, 200);
  EXPECT_EQ(f.client->Post("/v1/chat/completions", body, "Application/JSON")->status, 200);
}

// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
// "Host: evil.example"; the server answers only to its own names.
TEST(HttpEdge, HostHeaderMustNameThisServer) {
  ServerOptions o;
  o.allowed_hosts = {"api.internal", "::1"};
  ServerFixture f(o);
  auto get = [&](const std::string& host) { return f.client->Get("/health", httplib::Headers{{"Host", host}}); };
  expect_openai_error(get("evil.example"), 403, "--allowed-host evil.example");
  expect_openai_error(get("evil.example:" + std::to_string(f.server->port())), 403, "not one this server answers to");
  expect_openai_error(f.post("/v1/chat/completions", chat_body("x", 2), {{"Host", "localhost.evil.example"}}), 403,
                      "Host");
  for (const std::string host : {"localhost", "LOCALHOST:8000", "127.0.0.1", "127.0.0.1:1", "[::1]:8000",
                                 "api.internal", "API.Internal:443"})
    EXPECT_EQ(get(host)->status, 200) << host;
  EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2), {{"Host", "localhost:9"}})->status, 200);
}

TEST(HttpEdge, BrowserOriginsAreRefusedUnlessAllowed) {
  ServerOptions o;
  o.cors_origins = {"https://app.example/"};
  ServerFixture f(o);
  const httplib::Headers evil = {{"Origin", "https://evil.example"}};
  expect_openai_error(f.post("/v1/chat/completions", chat_body("x", 2), evil), 403, "--cors-origin https://evil.example");
  expect_openai_error(f.client->Get("/v1/models", evil), 403, "Origin");
  expect_anthropic_error(f.post("/v1/messages", messages_body("x", 2), evil), 403, "permission_error", "Origin");
  EXPECT_EQ(f.client->Get("/health", httplib::Headers{{"Origin", "null"}})->status, 403);
  // The allowed origin: CORS headers on the answer, and a preflight.
  const httplib::Headers app = {{"Origin", "https://app.example"}};
  auto ok = f.post("/v1/chat/completions", chat_body("x", 2), app);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  auto pre = f.client->Options("/v1/chat/completions",
                               httplib::Headers{{"Origin", "https://app.example"},
                                                {"Access-Control-Request-Method", "POST"},
                                                {"Access-Control-Request-Headers", "authorization, content-type"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Headers"), "authorization, content-type");
  auto refused = f.client->Options("/v1/chat/completions", httplib::Headers{{"Origin", "https://evil.example"}});
  EXPECT_EQ(refused->status, 403);
}

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
// What a server that is bound but not run needs: the fake engine, its scheduler, the byte codec,
// and loopback options on any free port.
struct Unstarted {
  test::FakeEngine engine{test::kByteVocab, 512};
  test::ByteCodec codec;
  runtime::Scheduler scheduler{engine, {}};
  static ServerOptions options() {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.model_id = "fake-model";
    return o;
  }
};

TEST(HttpEdge, ABurstOfConnectionsIsQueuedAndAnswered) {
  Unstarted u;
  HttpServer server(u.scheduler, u.codec, Unstarted::options());
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

// Failed authentications are audited with the client's address (never the key sent); every
// line names the client; the log is created 0600.
TEST(HttpEdge, AuditLogRecordsRefusalsAndClients) {
  const std::string path = (std::filesystem::temp_directory_path() / "dsv4_edge_audit_test.jsonl").string();
  std::filesystem::remove(path);
  ServerOptions o;
  o.api_keys = ApiKeys({"k1"});
  o.audit_log_path = path;
  {
    ServerFixture f(o);
    EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2), {{"Authorization", "Bearer wrong-key"}})->status, 401);
    EXPECT_EQ(f.client->Get("/v1/models", httplib::Headers{{"x-api-key", "also-wrong"}})->status, 401);
    EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2), {{"Authorization", "Bearer k1"}})->status, 200);
    EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2), {{"Host", "evil.example"}})->status, 403);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 4u);
  int refused = 0;
  for (const json& r : rows) {
    EXPECT_EQ(r["client"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << r;
    if (r["status"] == 401) {
      ++refused;
      EXPECT_TRUE(r["key_id"].is_null()) << r;
    }
  }
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(rows[2]["key_id"], key_id("k1"));
  EXPECT_EQ(rows[3]["status"], 403);
  std::ifstream again(path);
  const std::string all((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find("wrong-key"), std::string::npos);
  EXPECT_EQ(all.find("also-wrong"), std::string::npos);
  std::filesystem::remove(path);
}

// A second server on a port that is in use fails to bind, rather than silently sharing the
// port's connections with the first (issue #16: SO_REUSEPORT).
TEST(HttpEdge, ASecondServerOnABusyPortFailsToBind) {
  Unstarted u;
  ServerOptions o = Unstarted::options();
  HttpServer first(u.scheduler, u.codec, o);
  ASSERT_TRUE(first.bind().ok());
  o.port = first.port();
  HttpServer second(u.scheduler, u.codec, o);
  const Status st = second.bind();
  EXPECT_EQ(st.code(), StatusCode::io_error);
  EXPECT_NE(st.message().find("address in use"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace dsv4::server

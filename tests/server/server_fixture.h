// A live dsv4 server for tests: HttpServer on a free loopback port over the fake engine and the
// byte codec, with request bodies and error checks shared by the server tests.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "runtime/fake_engine.h"
#include "server/byte_codec.h"
#include "server/http_server.h"

namespace dsv4::server::test_server {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A live server on a free loopback port over the fake engine and the byte codec.
class ServerFixture {
 public:
  // max_drafts > 0: the fake engine has a drafter (the target's own logits: every draft right).
  explicit ServerFixture(ServerOptions o = {}, runtime::SchedulerOptions so = {}, int64_t context = 512,
                         std::chrono::milliseconds step_delay = 0ms, int max_drafts = 0)
      : engine(test::kByteVocab, context) {
    engine.max_drafts = max_drafts;
    // Printable ASCII only (ids 34..128 = bytes 32..126), EOS stays unlikely.
    engine.bias.assign(size_t(test::kByteVocab), -100.0f);
    for (int v = 34; v <= 128; ++v) engine.bias[size_t(v)] = 0;
    engine.step_delay = step_delay;
    scheduler = std::make_unique<runtime::Scheduler>(engine, so);
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.model_id.empty()) o.model_id = "fake-model";
    server = std::make_unique<HttpServer>(*scheduler, codec, o);
    Status st = server->bind();
    EXPECT_TRUE(st.ok()) << st.to_string();
    thread = std::thread([this] { (void)server->run(); });
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(20, 0);
    for (int i = 0; i < 200; ++i) {
      if (auto r = client->Get("/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(10ms);
    }
  }
  ~ServerFixture() {
    server->stop();
    thread.join();
  }
  httplib::Result post(const std::string& path, const json& body, httplib::Headers h = {}) {
    return client->Post(path.c_str(), h, body.dump(), "application/json");
  }

  test::FakeEngine engine;
  test::ByteCodec codec;
  std::unique_ptr<runtime::Scheduler> scheduler;
  std::unique_ptr<HttpServer> server;
  std::unique_ptr<httplib::Client> client;
  std::thread thread;
};

inline json chat_body(const std::string& user, int max_tokens, bool stream = false) {
  return {{"model", "fake-model"},
          {"messages", {{{"role", "user"}, {"content", user}}}},
          {"temperature", 0},
          {"max_tokens", max_tokens},
          {"stream", stream}};
}

inline json messages_body(const std::string& user, int max_tokens, bool stream = false) {
  return {{"model", "fake-model"},
          {"max_tokens", max_tokens},
          {"messages", {{{"role", "user"}, {"content", user}}}},
          {"temperature", 0},
          {"stream", stream}};
}

inline json responses_body(const json& input, int max_output_tokens, bool stream = false) {
  return {{"model", "fake-model"},
          {"input", input},
          {"temperature", 0},
          {"max_output_tokens", max_output_tokens},
          {"stream", stream}};
}

inline void expect_openai_error(const httplib::Result& r, int status, const std::string& needle) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r->body;
}

inline void expect_anthropic_error(const httplib::Result& r, int status, const std::string& type, const std::string& needle) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j["type"], "error") << r->body;
  EXPECT_EQ(j["error"]["type"], type) << r->body;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r->body;
}

}  // namespace dsv4::server::test_server

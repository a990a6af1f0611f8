#include "server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <fstream>
#include <thread>

#include "runtime/fake_engine.h"
#include "server/byte_codec.h"

namespace dsv4::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A live server on a free loopback port over the fake engine and the byte codec.
class ServerFixture {
 public:
  explicit ServerFixture(ServerOptions o = {}, runtime::SchedulerOptions so = {}, int64_t context = 512,
                         std::chrono::milliseconds step_delay = 0ms)
      : engine(test::kByteVocab, context) {
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

json chat_body(const std::string& user, int max_tokens, bool stream = false) {
  return {{"model", "fake-model"},
          {"messages", {{{"role", "user"}, {"content", user}}}},
          {"temperature", 0},
          {"max_tokens", max_tokens},
          {"stream", stream}};
}

// The data payloads of an SSE body, [DONE] included.
std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

void expect_openai_error(const httplib::Result& r, int status, const std::string& needle) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r->body;
}

// POSTs a streaming request and hands each received chunk to `on_chunk`; returning false
// hangs up (httplib 0.11's Post has no content receiver, so this goes through send()).
void post_streaming(int port, const json& body, std::function<bool(const char*, size_t)> on_chunk) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(20, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) { return on_chunk(data, n); };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(req, res, err);
}

TEST(HttpServer, ModelsHealthAndMetrics) {
  ServerFixture f;
  auto r = f.client->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "fake-model");
  r = f.client->Get("/health");
  EXPECT_EQ(r->status, 200);
  r = f.client->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("dsv4_requests_total{endpoint=\"/v1/models\",status=\"200\"} 1"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("# TYPE dsv4_time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_NE(r->body.find("dsv4_queue_depth 0"), std::string::npos);
}

TEST(HttpServer, ChatNonStreamingAndStreamingAgree) {
  ServerFixture f;
  auto r = f.post("/v1/chat/completions", chat_body("hello", 12));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  const std::string reasoning = j["choices"][0]["message"]["reasoning_content"];
  const std::string content = j["choices"][0]["message"]["content"];
  EXPECT_EQ(reasoning.size() + content.size() + (content.empty() && reasoning.size() == 12 ? 0 : 1), 12u);

  json body = chat_body("hello", 12, true);
  body["stream_options"] = {{"include_usage", true}};
  auto s = f.post("/v1/chat/completions", body);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto payloads = sse_payloads(s->body);
  ASSERT_GE(payloads.size(), 4u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string r2, c2;
  std::string finish;
  json usage;
  for (size_t i = 0; i + 1 < payloads.size(); ++i) {
    json c = json::parse(payloads[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"].empty()) {
      usage = c["usage"];
      continue;
    }
    const json& d = c["choices"][0]["delta"];
    if (d.contains("reasoning_content")) r2 += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) c2 += d["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(r2, reasoning);
  EXPECT_EQ(c2, content);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(usage["completion_tokens"], 12);
  EXPECT_EQ(usage["prompt_tokens"], j["usage"]["prompt_tokens"]);
}

TEST(HttpServer, ChatModeHasNoReasoning) {
  ServerFixture f;
  json body = chat_body("hi", 5);
  body["reasoning_effort"] = "none";
  auto r = f.post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  json m = json::parse(r->body)["choices"][0]["message"];
  EXPECT_FALSE(m.contains("reasoning_content"));
  EXPECT_EQ(m["content"].get<std::string>().size(), 5u);
  body.erase("reasoning_effort");
  body["chat_template_kwargs"] = {{"thinking", false}};
  auto r2 = f.post("/v1/chat/completions", body);
  EXPECT_EQ(json::parse(r2->body)["choices"][0]["message"]["content"], m["content"]);
}

TEST(HttpServer, CompletionsAndStopStrings) {
  ServerFixture f;
  json body = {{"model", "fake-model"}, {"prompt", "def f():"}, {"max_tokens", 20}, {"temperature", 0}};
  auto r = f.post("/v1/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  const std::string text = j["choices"][0]["text"];
  ASSERT_EQ(text.size(), 20u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 9);  // BOS + 8 bytes
  // Stop at a substring of the known output: the text ends right before it.
  body["stop"] = text.substr(5, 3);
  auto s = f.post("/v1/completions", body);
  json js = json::parse(s->body);
  EXPECT_EQ(js["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(js["choices"][0]["text"], text.substr(0, text.find(text.substr(5, 3))));
  // Token-id prompts and logprobs.
  json ids = {{"model", "fake-model"}, {"prompt", {0, 70, 71}}, {"max_tokens", 3}, {"logprobs", 2}, {"temperature", 0}};
  auto t = f.post("/v1/completions", ids);
  ASSERT_EQ(t->status, 200) << t->body;
  json lp = json::parse(t->body)["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_LE(lp["token_logprobs"][0].get<double>(), 0.0);
}

TEST(HttpServer, RequestsWithoutMaxTokensGetTheServerDefault) {
  ServerOptions o;
  o.default_max_tokens = 7;
  ServerFixture f(o);
  json body = chat_body("x", 1);
  body.erase("max_tokens");
  json j = json::parse(f.post("/v1/chat/completions", body)->body);
  EXPECT_EQ(j["usage"]["completion_tokens"], 7);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(HttpServer, ChatLogprobs) {
  ServerFixture f;
  json body = chat_body("x", 4);
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  auto r = f.post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  json lp = json::parse(r->body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 4u);
  EXPECT_EQ(lp[0]["top_logprobs"].size(), 3u);
  // Greedy: the chosen token is the most likely one.
  EXPECT_EQ(lp[0]["token"], lp[0]["top_logprobs"][0]["token"]);
}

TEST(HttpServer, ToolCallsAreReturnedAndStreamedAsDeltas) {
  ServerFixture f;
  // Outputs drawn from {'a', '#'} only: every '#' is a tool call for the byte codec's parser.
  f.engine.bias.assign(size_t(test::kByteVocab), -100.0f);
  f.engine.bias[size_t('a') + 2] = 0;
  f.engine.bias[size_t('#') + 2] = 0;
  json body = chat_body("call", 24);
  body["reasoning_effort"] = "none";
  body["tools"] = {{{"type", "function"}, {"function", {{"name", "lookup"}, {"parameters", {{"type", "object"}}}}}}};
  auto r = f.post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  json choice = json::parse(r->body)["choices"][0];
  const size_t n_calls = choice["message"].contains("tool_calls") ? choice["message"]["tool_calls"].size() : 0;
  ASSERT_GT(n_calls, 0u) << "the fake model never produced '#': " << r->body;
  EXPECT_EQ(choice["finish_reason"], "length");  // max_tokens ended it, not the model
  for (size_t k = 0; k < n_calls; ++k) {
    const json& c = choice["message"]["tool_calls"][k];
    EXPECT_EQ(c["id"], "call_" + std::to_string(k));
    EXPECT_EQ(c["type"], "function");
    EXPECT_EQ(c["function"]["name"], "lookup");
    EXPECT_EQ(json::parse(c["function"]["arguments"].get<std::string>())["n"], k);
  }
  // Streamed: deltas with index, id and name first, then argument pieces, reassembled equal.
  body["stream"] = true;
  auto s = f.post("/v1/chat/completions", body);
  ASSERT_EQ(s->status, 200);
  std::vector<json> calls;
  for (const auto& p : sse_payloads(s->body)) {
    if (p == "[DONE]") break;
    json d = json::parse(p)["choices"][0]["delta"];
    if (!d.contains("tool_calls")) continue;
    for (const auto& t : d["tool_calls"]) {
      const size_t i = t["index"];
      if (i >= calls.size()) {
        ASSERT_EQ(i, calls.size());
        ASSERT_TRUE(t.contains("id") && t["function"].contains("name")) << t;
        calls.push_back({{"id", t["id"]}, {"name", t["function"]["name"]}, {"arguments", ""}});
      }
      calls[i]["arguments"] = calls[i]["arguments"].get<std::string>() + t["function"]["arguments"].get<std::string>();
    }
  }
  ASSERT_EQ(calls.size(), n_calls);
  for (size_t k = 0; k < n_calls; ++k)
    EXPECT_EQ(calls[k]["arguments"], choice["message"]["tool_calls"][k]["function"]["arguments"]);
  // tool_choice none: the same output stays plain content.
  body["stream"] = false;
  body["tool_choice"] = "none";
  json none = json::parse(f.post("/v1/chat/completions", body)->body)["choices"][0]["message"];
  EXPECT_FALSE(none.contains("tool_calls"));
}

TEST(HttpServer, BadInputGetsOpenAIErrors) {
  ServerOptions o;
  o.max_body_bytes = 4096;
  ServerFixture f(o, {}, /*context=*/64);
  auto r = f.client->Post("/v1/chat/completions", "{not json", "application/json");
  expect_openai_error(r, 400, "not valid JSON");
  expect_openai_error(f.post("/v1/chat/completions", {{"model", "fake-model"}, {"messages", "hi"}}), 400, "messages");
  json b = chat_body("x", 3);
  b["temperature"] = "hot";
  expect_openai_error(f.post("/v1/chat/completions", b), 400, "temperature");
  b = chat_body("x", 3);
  b["messages"][0]["role"] = "wizard";
  expect_openai_error(f.post("/v1/chat/completions", b), 400, "role");
  b = chat_body("x", 3);
  b["model"] = "gpt-4";
  expect_openai_error(f.post("/v1/chat/completions", b), 404, "gpt-4");
  expect_openai_error(f.post("/v1/chat/completions", chat_body(std::string(100, 'a'), 3)), 400, "context");
  expect_openai_error(f.post("/v1/completions", {{"model", "fake-model"}, {"prompt", 5}}), 400, "prompt");
  expect_openai_error(f.post("/v1/completions", {{"model", "fake-model"}, {"prompt", {0, 9999}}}), 400, "vocabulary");
  auto big = f.client->Post("/v1/chat/completions", std::string(10000, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  auto nf = f.client->Get("/v1/nothing");
  expect_openai_error(nf, 404, "/v1/nothing");
  // The server is still healthy.
  EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2))->status, 200);
}

TEST(HttpServer, ApiKeysProtectEverythingButHealth) {
  ServerOptions o;
  o.api_keys = ApiKeys({"sekrit"});
  ServerFixture f(o);
  expect_openai_error(f.client->Get("/v1/models"), 401, "API key");
  auto wrong = f.client->Get("/v1/models", httplib::Headers{{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(f.client->Get("/metrics")->status, 401);
  EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2))->status, 401);
  EXPECT_EQ(f.client->Get("/health")->status, 200);
  httplib::Headers ok = {{"Authorization", "Bearer sekrit"}};
  EXPECT_EQ(f.client->Get("/v1/models", ok)->status, 200);
  EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2), ok)->status, 200);
}

TEST(HttpServer, AuditLogRecordsCountsNotText) {
  const std::string path = (std::filesystem::temp_directory_path() / "dsv4_audit_test.jsonl").string();
  std::filesystem::remove(path);
  ServerOptions o;
  o.api_keys = ApiKeys({"k1"});
  o.audit_log_path = path;
  {
    ServerFixture f(o);
    httplib::Headers h = {{"Authorization", "Bearer k1"}};
    ASSERT_EQ(f.post("/v1/chat/completions", chat_body("secret prompt", 3), h)->status, 200);
    ASSERT_EQ(f.post("/v1/completions", {{"model", "fake-model"}, {"prompt", "zz"}, {"max_tokens", 2}, {"stream", true}}, h)->status, 200);
    json unknown = chat_body("x", 2);
    unknown["model"] = "other";
    ASSERT_EQ(f.post("/v1/chat/completions", unknown, h)->status, 404);
  }
  std::ifstream in(path);
  std::string line;
  std::vector<json> rows;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  // A streamed request is audited when its stream ends, which can be after the client has
  // already sent its next request: find the rows by what they record, not by position.
  auto row = [&](const std::string& endpoint, int status) {
    for (const json& r : rows)
      if (r["endpoint"] == endpoint && r["status"] == status) return r;
    ADD_FAILURE() << "no audit row for " << endpoint << " " << status;
    return json::object();
  };
  const json chat = row("/v1/chat/completions", 200), text = row("/v1/completions", 200),
             missing = row("/v1/chat/completions", 404);
  EXPECT_EQ(missing["model"], "other");
  EXPECT_TRUE(missing["finish_reason"].is_null());
  EXPECT_EQ(chat["key_id"], key_id("k1"));
  EXPECT_EQ(chat["generated_tokens"], 3);
  EXPECT_EQ(chat["finish_reason"], "length");
  EXPECT_TRUE(chat["latency_ms"].is_number());
  EXPECT_FALSE(chat.contains("prompt"));
  EXPECT_EQ(text["prompt_tokens"], 3);
  std::ifstream again(path);
  std::string all((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find("secret prompt"), std::string::npos);
  EXPECT_EQ(all.find("k1\""), std::string::npos);
  std::filesystem::remove(path);
}

TEST(HttpServer, QueueOverflowIs429) {
  runtime::SchedulerOptions so;
  so.max_running = 1;
  so.max_queued = 0;
  ServerFixture f({}, so, 4096, 5ms);
  // A long stream holds the only slot.
  std::atomic<bool> stop_reading{false};
  std::thread holder([&] {
    post_streaming(f.server->port(), chat_body("x", 2000, true),
                   [&](const char*, size_t) { return !stop_reading.load(); });
  });
  for (int i = 0; i < 200 && f.scheduler->stats().running == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(f.scheduler->stats().running, 1);
  expect_openai_error(f.post("/v1/chat/completions", chat_body("y", 2)), 429, "");
  stop_reading = true;
  holder.join();
}

TEST(HttpServer, ClientDisconnectCancelsAndFreesTheSlot) {
  runtime::SchedulerOptions so;
  so.max_running = 1;
  ServerFixture f({}, so, 4096, 5ms);
  int chunks = 0;
  {
    post_streaming(f.server->port(), chat_body("x", 3000, true), [&](const char*, size_t) {
      return ++chunks < 3;  // hang up after a few chunks
    });
  }
  EXPECT_GE(chunks, 3);
  bool freed = false;
  for (int i = 0; i < 300 && !freed; ++i) {
    freed = f.scheduler->stats().running == 0;
    if (!freed) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(freed) << "the cancelled stream still holds its sequence";
  // The slot serves the next request.
  auto r = f.post("/v1/chat/completions", chat_body("y", 3));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServer, ConcurrentGreedyStreamsMatchSequentialOnes) {
  runtime::SchedulerOptions so;
  so.max_running = 8;
  ServerFixture f({}, so, 1024, 1ms);
  std::vector<std::string> sequential;
  for (int i = 0; i < 8; ++i) {
    auto r = f.post("/v1/chat/completions", chat_body("prompt " + std::to_string(i), 16));
    json m = json::parse(r->body)["choices"][0]["message"];
    sequential.push_back(m["reasoning_content"].get<std::string>() + "|" + m["content"].get<std::string>());
  }
  std::vector<std::string> concurrent(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", f.server->port());
      c.set_read_timeout(20, 0);
      auto r = c.Post("/v1/chat/completions", chat_body("prompt " + std::to_string(i), 16, true).dump(), "application/json");
      if (!r) return;
      std::string reasoning, content;
      for (const auto& p : sse_payloads(r->body)) {
        if (p == "[DONE]") break;
        json d = json::parse(p)["choices"][0]["delta"];
        if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
        if (d.contains("content")) content += d["content"].get<std::string>();
      }
      concurrent[size_t(i)] = reasoning + "|" + content;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(concurrent, sequential);
  EXPECT_GE(f.scheduler->stats().max_batch, 2u);
}

}  // namespace
}  // namespace dsv4::server

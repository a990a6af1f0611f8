#include "server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <thread>

#include "server/server_fixture.h"

namespace dsv4::server {
namespace {

using namespace test_server;

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

// Restricts the fake model's outputs to `chars` (each with logit bias 0).
void allow_only(test::FakeEngine& e, const std::string& chars) {
  e.bias.assign(size_t(test::kByteVocab), -100.0f);
  for (char c : chars) e.bias[size_t(c) + 2] = 0;
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
  r = f.client->Get("/no-such-page");
  EXPECT_EQ(r->status, 404);
  // The root answers GET and HEAD (Claude Code checks its base URL with HEAD /).
  EXPECT_EQ(f.client->Get("/")->status, 200);
  EXPECT_EQ(f.client->Head("/")->status, 200);
  // Counted before each response is written, so the next request always sees it.
  r = f.client->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("dsv4_requests_total{endpoint=\"/v1/models\",status=\"200\"} 1"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("dsv4_requests_total{endpoint=\"other\",status=\"404\"} 1"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("# TYPE dsv4_time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_NE(r->body.find("dsv4_queue_depth 0"), std::string::npos);
}

// A step that runs past --health-step-timeout (a stuck engine, a rank of an mpirun launch that
// does not answer) turns /health to 503 with the reason, and back to 200 once it ends.
TEST(HttpServer, HealthIs503WhileAStepRunsPastItsThreshold) {
  ServerOptions o;
  o.health_step_timeout = 200ms;
  ServerFixture f(o, {}, 512, /*step_delay=*/1500ms);
  EXPECT_EQ(f.client->Get("/health")->status, 200);
  std::thread request([&] {
    httplib::Client c("127.0.0.1", f.server->port());
    c.set_read_timeout(20, 0);
    auto r = c.Post("/v1/completions", json{{"model", "fake-model"}, {"prompt", "x"}, {"max_tokens", 1}}.dump(),
                    "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  });
  int status = 0;
  std::string body;
  for (int i = 0; i < 100 && status != 503; ++i) {
    std::this_thread::sleep_for(20ms);
    if (auto r = f.client->Get("/health")) std::tie(status, body) = std::make_pair(r->status, r->body);
  }
  EXPECT_EQ(status, 503) << f.client->Get("/metrics")->body;
  EXPECT_NE(json::parse(body)["reason"].get<std::string>().find("a step has been running for"), std::string::npos)
      << body;
  EXPECT_EQ(f.client->Get("/metrics")->body.find("dsv4_step_running_seconds 0\n"), std::string::npos);
  request.join();
  EXPECT_EQ(f.client->Get("/health")->status, 200);
  EXPECT_NE(f.client->Get("/metrics")->body.find("dsv4_step_running_seconds 0\n"), std::string::npos);
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
  // The usage counts the tokens up to the one that completed the stop string (byte codec: one
  // token per character).
  EXPECT_EQ(js["usage"]["completion_tokens"], text.find(text.substr(5, 3)) + 3);
  // Token-id prompts and logprobs.
  json ids = {{"model", "fake-model"}, {"prompt", {0, 70, 71}}, {"max_tokens", 3}, {"logprobs", 2}, {"temperature", 0}};
  auto t = f.post("/v1/completions", ids);
  ASSERT_EQ(t->status, 200) << t->body;
  json lp = json::parse(t->body)["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_LE(lp["token_logprobs"][0].get<double>(), 0.0);
}

// With speculative decoding (a drafter the model always agrees with: whole rounds of 6 tokens),
// a stop string inside an accepted round ends the text and the count there, in both APIs, and
// the usage reports the accepted drafts.
TEST(HttpServer, StopStringInsideASpeculativeRound) {
  runtime::SchedulerOptions so;
  so.adaptive_drafting = false;
  ServerFixture plain, spec({}, so, 512, 0ms, 5);
  json body = {{"model", "fake-model"}, {"prompt", "def f():"}, {"max_tokens", 40}, {"temperature", 0}};
  const std::string text = json::parse(plain.post("/v1/completions", body)->body)["choices"][0]["text"];
  json full = json::parse(spec.post("/v1/completions", body)->body);
  EXPECT_EQ(full["choices"][0]["text"], text);
  EXPECT_GT(full["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 20);
  for (size_t at : {size_t(3), size_t(9), size_t(16)}) {
    SCOPED_TRACE(at);
    body["stop"] = text.substr(at, 2);
    const size_t cut = text.find(text.substr(at, 2));
    json js = json::parse(spec.post("/v1/completions", body)->body);
    EXPECT_EQ(js["choices"][0]["text"], text.substr(0, cut));
    EXPECT_EQ(js["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(js["usage"]["completion_tokens"], cut + 2);
    json m = messages_body("x", 40);
    m["temperature"] = 0;
    m["stop_sequences"] = {"q"};
    json plain_m = json::parse(plain.post("/v1/messages", m)->body), spec_m = json::parse(spec.post("/v1/messages", m)->body);
    EXPECT_EQ(spec_m["content"], plain_m["content"]);
    EXPECT_EQ(spec_m["stop_reason"], plain_m["stop_reason"]);
    EXPECT_EQ(spec_m["usage"]["output_tokens"], plain_m["usage"]["output_tokens"]);
  }
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
  allow_only(f.engine, "a#");
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
    EXPECT_EQ(c["id"].get<std::string>().rfind("call_", 0), 0u);
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
  EXPECT_EQ(f.client->Head("/")->status, 401);
  httplib::Headers ok = {{"Authorization", "Bearer sekrit"}};
  EXPECT_EQ(f.client->Get("/v1/models", ok)->status, 200);
  EXPECT_EQ(f.client->Head("/", httplib::Headers{{"x-api-key", "sekrit"}})->status, 200);
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
  // Metrics: the stream's 200 went out with its head, so the abort is counted apart, and the
  // tokens it generated before the hang-up are counted (at least one per chunk received).
  std::string m;
  for (int i = 0; i < 300 && m.find("dsv4_streams_aborted_total{") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(10ms);
    m = f.client->Get("/metrics")->body;
  }
  EXPECT_NE(m.find("dsv4_streams_aborted_total{endpoint=\"/v1/chat/completions\"} 1\n"), std::string::npos) << m;
  const std::string sample = "\ndsv4_generation_tokens_total ";
  const size_t at = m.find(sample);
  ASSERT_NE(at, std::string::npos) << m;
  EXPECT_GE(std::stoll(m.substr(at + sample.size())), 2) << m;
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


// ---- /v1/messages (Anthropic) ----

// The (event name, data) pairs of an Anthropic SSE body.
std::vector<std::pair<std::string, json>> sse_events(const std::string& body) {
  std::vector<std::pair<std::string, json>> out;
  size_t pos = 0;
  while ((pos = body.find("event: ", pos)) != std::string::npos) {
    const size_t eol = body.find('\n', pos);
    const std::string name = body.substr(pos + 7, eol - pos - 7);
    EXPECT_EQ(body.compare(eol + 1, 6, "data: "), 0);
    const size_t end = body.find("\n\n", eol);
    out.emplace_back(name, json::parse(body.substr(eol + 7, end - eol - 7)));
    pos = end;
  }
  return out;
}

// Rebuilds the message a stream describes, checking the event order on the way.
json message_from_events(const std::vector<std::pair<std::string, json>>& events) {
  json msg;
  int open = -1;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& [name, e] = events[i];
    EXPECT_EQ(name, e["type"].get<std::string>());
    if (name == "message_start") {
      EXPECT_EQ(i, 0u);
      msg = e["message"];
    } else if (name == "content_block_start") {
      EXPECT_EQ(open, -1);
      open = e["index"];
      EXPECT_EQ(size_t(open), msg["content"].size());
      msg["content"].push_back(e["content_block"]);
    } else if (name == "content_block_delta") {
      EXPECT_EQ(e["index"], open);
      json& b = msg["content"][size_t(open)];
      const json& d = e["delta"];
      if (d["type"] == "text_delta") b["text"] = b["text"].get<std::string>() + d["text"].get<std::string>();
      if (d["type"] == "thinking_delta") b["thinking"] = b["thinking"].get<std::string>() + d["thinking"].get<std::string>();
      if (d["type"] == "input_json_delta") b["partial"] = b.value("partial", "") + d["partial_json"].get<std::string>();
    } else if (name == "content_block_stop") {
      EXPECT_EQ(e["index"], open);
      json& b = msg["content"][size_t(open)];
      if (b.contains("partial")) {
        b["input"] = json::parse(b["partial"].get<std::string>());
        b.erase("partial");
      }
      open = -1;
    } else if (name == "message_delta") {
      msg["stop_reason"] = e["delta"]["stop_reason"];
      msg["stop_sequence"] = e["delta"]["stop_sequence"];
      msg["usage"] = e["usage"];
    } else if (name == "message_stop") {
      EXPECT_EQ(i + 1, events.size());
    } else {
      EXPECT_EQ(name, "ping");
    }
  }
  return msg;
}

TEST(HttpServer, MessagesNonStreamingAndStreamingAgree) {
  ServerFixture f;
  json thinking = messages_body("hello", 12);
  thinking["thinking"] = {{"type", "adaptive"}};
  auto r = f.post("/v1/messages", thinking);
  ASSERT_EQ(r->status, 200) << r->body;
  json m = json::parse(r->body);
  EXPECT_EQ(m["type"], "message");
  EXPECT_EQ(m["role"], "assistant");
  EXPECT_EQ(m["model"], "fake-model");
  EXPECT_EQ(m["id"].get<std::string>().rfind("msg", 0), 0u);
  EXPECT_EQ(m["stop_reason"], "max_tokens");
  EXPECT_TRUE(m["stop_sequence"].is_null());
  EXPECT_EQ(m["usage"]["output_tokens"], 12);
  // Thinking asked for: the reasoning comes first, as a thinking block.
  ASSERT_GE(m["content"].size(), 1u);
  EXPECT_EQ(m["content"][0]["type"], "thinking");

  thinking["stream"] = true;
  auto s = f.post("/v1/messages", thinking);
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto events = sse_events(s->body);
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events[1].first, "ping");
  json streamed = message_from_events(events);
  EXPECT_EQ(streamed["content"], m["content"]);
  EXPECT_EQ(streamed["stop_reason"], m["stop_reason"]);
  EXPECT_EQ(streamed["usage"]["output_tokens"], 12);
  EXPECT_EQ(streamed["usage"]["input_tokens"].get<int>() + streamed["usage"]["cache_read_input_tokens"].get<int>(),
            m["usage"]["input_tokens"].get<int>() + m["usage"]["cache_read_input_tokens"].get<int>());

  // No `thinking` (Anthropic's default; as {"type": "disabled"}): text only.
  json body = messages_body("hello", 5);
  json plain = json::parse(f.post("/v1/messages", body)->body);
  body["thinking"] = {{"type", "disabled"}};
  EXPECT_EQ(json::parse(f.post("/v1/messages", body)->body)["content"], plain["content"]);
  ASSERT_EQ(plain["content"].size(), 1u);
  EXPECT_EQ(plain["content"][0]["type"], "text");
  EXPECT_EQ(plain["content"][0]["text"].get<std::string>().size(), 5u);
  // A stop sequence taken from that text ends the answer there.
  body["stop_sequences"] = {plain["content"][0]["text"].get<std::string>().substr(2, 2)};
  json stopped = json::parse(f.post("/v1/messages", body)->body);
  EXPECT_EQ(stopped["stop_reason"], "stop_sequence");
  EXPECT_EQ(stopped["stop_sequence"], body["stop_sequences"][0]);
  // count_tokens agrees with the prompt the request used.
  auto count = f.post("/v1/messages/count_tokens", body);
  ASSERT_EQ(count->status, 200) << count->body;
  EXPECT_EQ(json::parse(count->body)["input_tokens"],
            plain["usage"]["input_tokens"].get<int>() + plain["usage"]["cache_read_input_tokens"].get<int>());
}

TEST(HttpServer, MessagesToolUseRoundTrip) {
  ServerFixture f;
  // Outputs drawn from {'a', '#'}: every '#' is a tool call for the byte codec's parser.
  allow_only(f.engine, "a#");
  json body = messages_body("call", 24);
  body["thinking"] = {{"type", "disabled"}};
  body["tools"] = {{{"name", "lookup"}, {"description", "Look up"}, {"input_schema", {{"type", "object"}}}}};
  json m = json::parse(f.post("/v1/messages", body)->body);
  std::vector<json> uses;
  for (const json& b : m["content"])
    if (b["type"] == "tool_use") uses.push_back(b);
  ASSERT_FALSE(uses.empty()) << m.dump();
  EXPECT_EQ(uses[0]["name"], "lookup");
  EXPECT_EQ(uses[0]["input"], json({{"n", 0}}));
  EXPECT_EQ(uses[0]["id"].get<std::string>().rfind("toolu_", 0), 0u);
  // The tool result goes back in the next request.
  body["messages"].push_back({{"role", "assistant"}, {"content", m["content"]}});
  body["messages"].push_back(
      {{"role", "user"}, {"content", {{{"type", "tool_result"}, {"tool_use_id", uses[0]["id"]}, {"content", "42"}}}}});
  auto next = f.post("/v1/messages", body);
  ASSERT_EQ(next->status, 200) << next->body;
  EXPECT_GT(json::parse(next->body)["usage"]["input_tokens"], m["usage"]["input_tokens"]);
  // Streamed tool use: the input arrives as input_json_delta and reassembles.
  body["stream"] = true;
  body["messages"] = messages_body("call", 24)["messages"];
  json streamed = message_from_events(sse_events(f.post("/v1/messages", body)->body));
  // Equal but for the tool_use ids, which are new in every response.
  for (json* content : {&streamed["content"], &m["content"]})
    for (json& b : *content) b.erase("id");
  EXPECT_EQ(streamed["content"], m["content"]);
}

// tool_choice enforcement: the fake model can never write '#' (a call) on its own, so every
// call in these answers is one the server forced.
TEST(HttpServer, ToolChoiceForcesACallInBothApis) {
  ServerFixture f;
  allow_only(f.engine, "abcdefgh");
  const json tools = {{{"type", "function"}, {"function", {{"name", "lookup"}, {"parameters", {{"type", "object"}}}}}},
                      {{"type", "function"}, {"function", {{"name", "fetch"}, {"parameters", {{"type", "object"}}}}}}};
  auto openai_calls = [&](const json& choice) {
    json body = chat_body("call", 8);
    body["reasoning_effort"] = "none";
    body["tools"] = tools;
    if (!choice.is_null()) body["tool_choice"] = choice;
    auto r = f.post("/v1/chat/completions", body);
    EXPECT_EQ(r->status, 200) << r->body;
    json msg = json::parse(r->body)["choices"][0]["message"];
    return msg.contains("tool_calls") ? msg["tool_calls"] : json::array();
  };
  EXPECT_TRUE(openai_calls(nullptr).empty());
  EXPECT_TRUE(openai_calls("auto").empty());
  json calls = openai_calls("required");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["function"]["name"], "lookup");
  calls = openai_calls({{"type", "function"}, {"function", {{"name", "fetch"}}}});
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["function"]["name"], "fetch");

  json body = messages_body("call", 12);
  body["tools"] = {{{"name", "lookup"}, {"input_schema", {{"type", "object"}}}},
                   {{"name", "fetch"}, {"input_schema", {{"type", "object"}}}}};
  body["thinking"] = {{"type", "disabled"}};
  body["tool_choice"] = {{"type", "tool"}, {"name", "fetch"}};
  json m = json::parse(f.post("/v1/messages", body)->body);
  ASSERT_EQ(m["content"][0]["type"], "tool_use") << m.dump();
  EXPECT_EQ(m["content"][0]["name"], "fetch");
  // In thinking mode the call follows the reasoning; the budget ends the reasoning ('|' is
  // `</think>` for the byte codec, and the fake model cannot write it either).
  body["thinking"] = {{"type", "enabled"}, {"budget_tokens", 5}};
  body["tool_choice"] = {{"type", "any"}};
  m = json::parse(f.post("/v1/messages", body)->body);
  ASSERT_EQ(m["content"].size(), 3u) << m.dump();
  EXPECT_EQ(m["content"][0]["type"], "thinking");
  EXPECT_EQ(m["content"][0]["thinking"].get<std::string>().size(), 5u);
  EXPECT_EQ(m["content"][1]["type"], "tool_use");
  EXPECT_EQ(m["content"][1]["name"], "lookup");
  EXPECT_EQ(m["content"][2]["type"], "text");
  EXPECT_EQ(m["stop_reason"], "max_tokens");
  EXPECT_EQ(m["usage"]["output_tokens"], 12);
}

TEST(HttpServer, ToolChoiceNoneBansCalls) {
  ServerFixture f;
  // The fake model writes '#' (a call) often when it may.
  allow_only(f.engine, "a#");
  f.engine.bias[size_t('#') + 2] = 3;
  json body = messages_body("call", 16);
  body["thinking"] = {{"type", "disabled"}};
  body["tools"] = {{{"name", "lookup"}, {"input_schema", {{"type", "object"}}}}};
  json m = json::parse(f.post("/v1/messages", body)->body);
  EXPECT_NE(m.dump().find("tool_use"), std::string::npos) << m.dump();
  body["tool_choice"] = {{"type", "none"}};
  m = json::parse(f.post("/v1/messages", body)->body);
  ASSERT_EQ(m["content"].size(), 1u) << m.dump();
  EXPECT_EQ(m["content"][0]["text"], std::string(16, 'a'));
}

TEST(HttpServer, MessagesErrorsUseAnthropicShapes) {
  ServerOptions o;
  o.api_keys = ApiKeys({"sekrit"});
  ServerFixture f(o, {}, /*context=*/64);
  const httplib::Headers key = {{"x-api-key", "sekrit"}, {"anthropic-version", "2023-06-01"}};
  expect_anthropic_error(f.post("/v1/messages", messages_body("x", 3)), 401, "authentication_error", "API key");
  expect_anthropic_error(f.post("/v1/messages", messages_body("x", 3), {{"x-api-key", "nope"}}), 401,
                         "authentication_error", "x-api-key");
  EXPECT_EQ(f.post("/v1/messages", messages_body("x", 3), key)->status, 200);
  EXPECT_EQ(f.post("/v1/messages", messages_body("x", 3), {{"Authorization", "Bearer sekrit"}})->status, 200);
  // x-api-key works on the OpenAI endpoints too, whose errors keep OpenAI's shape.
  EXPECT_EQ(f.client->Get("/v1/models", httplib::Headers{{"x-api-key", "sekrit"}})->status, 200);
  expect_openai_error(f.client->Get("/v1/models"), 401, "API key");

  json b = messages_body("x", 3);
  b.erase("max_tokens");
  expect_anthropic_error(f.post("/v1/messages", b, key), 400, "invalid_request_error", "max_tokens");
  b = messages_body("x", 3);
  b["model"] = "claude-sonnet";
  expect_anthropic_error(f.post("/v1/messages", b, key), 404, "not_found_error", "claude-sonnet");
  expect_anthropic_error(f.client->Post("/v1/messages", key, "{oops", "application/json"), 400,
                         "invalid_request_error", "JSON");
  expect_anthropic_error(f.post("/v1/messages", messages_body(std::string(100, 'a'), 3), key), 400,
                         "invalid_request_error", "context");
  expect_anthropic_error(f.post("/v1/messages/batches", messages_body("x", 3), key), 404, "not_found_error",
                         "/v1/messages/batches");
  expect_anthropic_error(f.post("/v1/messages/count_tokens", {{"model", "fake-model"}}, key), 400,
                         "invalid_request_error", "messages");
}

// Effort names clients send by default ("medium": Codex, Claude Code) are served on both
// revisions, mapped as DeepSeek's API maps them; an unknown name is a 400 that lists the names,
// in both APIs (count_tokens too).
TEST(HttpServer, ReasoningEffortIsMappedToTheServedEncoder) {
  for (auto revision : {text::EncoderRevision::v4, text::EncoderRevision::v4_flash_0731}) {
    ServerFixture f;
    f.codec.revision = revision;
    json chat = chat_body("hi", 3);
    json messages = messages_body("hi", 3);
    for (const char* e : {"low", "medium", "xhigh"}) {
      chat["reasoning_effort"] = e;
      messages["output_config"] = {{"effort", e}};
      EXPECT_EQ(f.post("/v1/chat/completions", chat)->status, 200) << e;
      EXPECT_EQ(f.post("/v1/messages", messages)->status, 200) << e;
    }
    chat["reasoning_effort"] = "extreme";
    messages["output_config"] = {{"effort", "extreme"}};
    expect_openai_error(f.post("/v1/chat/completions", chat), 400, "not 'extreme'");
    expect_anthropic_error(f.post("/v1/messages", messages), 400, "invalid_request_error", "not 'extreme'");
    messages.erase("max_tokens");
    expect_anthropic_error(f.post("/v1/messages/count_tokens", messages), 400, "invalid_request_error",
                           "'output_config.effort'");
  }
}

// A server shutting down (SIGTERM) ends open streams with an error, not as complete answers
// (issue #16: an Anthropic stream ended as end_turn, an OpenAI stream just stopped).
TEST(HttpServer, ShutdownEndsOpenStreamsWithAnError) {
  for (const bool anthropic : {false, true}) {
    SCOPED_TRACE(anthropic);
    ServerFixture f({}, {}, 512, 20ms);
    std::thread stopper([&] {
      std::this_thread::sleep_for(300ms);
      f.scheduler->shutdown();
    });
    auto r = anthropic ? f.post("/v1/messages", messages_body("x", 400, true))
                       : f.post("/v1/chat/completions", chat_body("x", 400, true));
    stopper.join();
    ASSERT_TRUE(r);
    if (anthropic) {
      auto events = sse_events(r->body);
      ASSERT_FALSE(events.empty()) << r->body;
      EXPECT_EQ(events.back().first, "error") << r->body.substr(r->body.size() > 600 ? r->body.size() - 600 : 0);
      EXPECT_NE(events.back().second.dump().find("shutting down"), std::string::npos);
      for (const auto& [name, data] : events) EXPECT_NE(name, "message_stop");
    } else {
      auto payloads = sse_payloads(r->body);
      ASSERT_GE(payloads.size(), 2u) << r->body;
      EXPECT_NE(r->body.find("shutting down"), std::string::npos) << r->body.substr(r->body.size() > 600 ? r->body.size() - 600 : 0);
      EXPECT_EQ(r->body.find("\"finish_reason\":\"cancelled\""), std::string::npos);
    }
  }
}

// NaN/Inf logits (a broken checkpoint) end the request with an error in every API shape, never
// with sampled garbage.
TEST(HttpServer, NonFiniteLogitsAreAnError) {
  ServerFixture f;
  f.engine.bias[40] = std::numeric_limits<float>::quiet_NaN();
  expect_openai_error(f.post("/v1/chat/completions", chat_body("x", 5)), 500, "non-finite logit");
  expect_openai_error(f.post("/v1/completions", {{"model", "fake-model"}, {"prompt", "x"}, {"max_tokens", 5}}), 500,
                      "non-finite logit");
  expect_anthropic_error(f.post("/v1/messages", messages_body("x", 5)), 500, "api_error", "non-finite logit");
  // Streaming: an error frame (OpenAI) or error event (Anthropic) and no content.
  auto s = f.post("/v1/chat/completions", chat_body("x", 5, true));
  ASSERT_TRUE(s);
  auto payloads = sse_payloads(s->body);
  ASSERT_GE(payloads.size(), 2u) << s->body;
  json err = json::parse(payloads[payloads.size() - 2]);
  EXPECT_NE(err["error"]["message"].get<std::string>().find("non-finite logit"), std::string::npos) << s->body;
  for (size_t i = 1; i + 2 < payloads.size(); ++i) EXPECT_TRUE(json::parse(payloads[i])["choices"][0]["delta"].empty());
  auto m = f.post("/v1/messages", messages_body("x", 5, true));
  ASSERT_TRUE(m);
  auto events = sse_events(m->body);
  ASSERT_FALSE(events.empty()) << m->body;
  EXPECT_EQ(events.back().first, "error");
  EXPECT_EQ(events.back().second["error"]["type"], "api_error");
  f.engine.bias[40] = 0;
  EXPECT_EQ(f.post("/v1/chat/completions", chat_body("x", 2))->status, 200);
}

// A raw HTTP/1.1 POST whose client closes the connection without reading the answer.
void post_and_hang_up(int port, const std::string& path, const json& body, std::atomic<bool>& hang_up) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string payload = body.dump();
  const std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                          "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
  while (!hang_up.load()) std::this_thread::sleep_for(5ms);
  close(fd);
}

TEST(HttpServer, NonStreamingClientDisconnectCancelsAndFreesTheSlot) {
  runtime::SchedulerOptions so;
  so.max_running = 1;
  ServerFixture f({}, so, 8192, 5ms);
  for (const std::string path : {"/v1/chat/completions", "/v1/messages", "/v1/completions", "/v1/responses"}) {
    SCOPED_TRACE(path);
    json body = path == "/v1/messages"      ? messages_body("x", 5000)
                : path == "/v1/completions" ? json{{"model", "fake-model"}, {"prompt", "x"}, {"max_tokens", 5000}}
                : path == "/v1/responses"   ? responses_body("x", 5000)
                                            : chat_body("x", 5000);
    std::atomic<bool> hang_up{false};
    std::thread client([&] { post_and_hang_up(f.server->port(), path, body, hang_up); });
    // 5000 tokens at >= 5 ms a step would hold the only slot for 25 s.
    for (int i = 0; i < 300 && f.scheduler->stats().running == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(f.scheduler->stats().running, 1);
    std::this_thread::sleep_for(50ms);
    hang_up = true;
    client.join();
    bool freed = false;
    for (int i = 0; i < 300 && !freed; ++i) {
      freed = f.scheduler->stats().running == 0;
      if (!freed) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(freed) << "the abandoned request still holds its sequence";
    // The slot serves the next request at once, not after the abandoned one's 5000 tokens.
    const auto t0 = std::chrono::steady_clock::now();
    auto r = f.post("/v1/chat/completions", chat_body("y", 3));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  }
  auto metrics = f.client->Get("/metrics");
  EXPECT_NE(metrics->body.find("status=\"499\"} "), std::string::npos) << metrics->body;
}

// ---- /v1/responses ----

// Rebuilds the response a stream describes, checking the event sequence on the way: names
// equal to the types, sequence numbers 0, 1, 2 ..., items added and done in order, deltas that
// add up to the done texts.
json response_from_events(const std::vector<std::pair<std::string, json>>& events) {
  json response;
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& [name, e] = events[i];
    EXPECT_EQ(name, e["type"].get<std::string>());
    EXPECT_EQ(e["sequence_number"], i) << name;
    if (i == 0) {
      EXPECT_EQ(name, "response.created");
    } else if (i == 1) {
      EXPECT_EQ(name, "response.in_progress");
    }
    if (name == "response.created" || name == "response.in_progress") {
      EXPECT_EQ(e["response"]["status"], "in_progress");
      response = e["response"];
    } else if (name == "response.output_item.added") {
      EXPECT_EQ(e["output_index"], response["output"].size());
      response["output"].push_back(e["item"]);
      text.clear();
    } else if (name == "response.output_text.delta" || name == "response.reasoning_text.delta" ||
               name == "response.function_call_arguments.delta") {
      EXPECT_EQ(e["item_id"], response["output"].back()["id"]);
      text += e["delta"].get<std::string>();
    } else if (name == "response.output_text.done" || name == "response.reasoning_text.done") {
      EXPECT_EQ(e["text"], text);
    } else if (name == "response.function_call_arguments.done") {
      EXPECT_EQ(e["arguments"], text);
    } else if (name == "response.output_item.done") {
      EXPECT_EQ(e["output_index"].get<size_t>() + 1, response["output"].size());
      response["output"].back() = e["item"];
    } else if (name == "response.completed" || name == "response.incomplete" || name == "response.failed") {
      EXPECT_EQ(i + 1, events.size());
      EXPECT_EQ(e["response"]["output"], response["output"]);
      response = e["response"];
    } else {
      EXPECT_TRUE(name == "response.content_part.added" || name == "response.content_part.done") << name;
    }
  }
  return response;
}

// The output without its item and call ids (each response numbers its own).
json without_ids(json output) {
  for (auto& item : output) {
    item.erase("id");
    item.erase("call_id");
  }
  return output;
}

TEST(HttpServer, ResponsesNonStreamingAndStreamingAgree) {
  ServerFixture f;
  allow_only(f.engine, "abc|");  // '|' ends the reasoning for the byte codec
  auto r = f.post("/v1/responses", responses_body("hello", 12));
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "response");
  EXPECT_EQ(j["id"].get<std::string>().rfind("resp_", 0), 0u);
  EXPECT_EQ(j["model"], "fake-model");
  EXPECT_EQ(j["status"], "incomplete");
  EXPECT_EQ(j["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(j["max_output_tokens"], 12);
  const json& u = j["usage"];
  EXPECT_EQ(u["output_tokens"], 12);
  EXPECT_EQ(u["total_tokens"], u["input_tokens"].get<int>() + 12);
  // Thinking is the default: the reasoning comes first, and its tokens are counted, `</think>`
  // ('|' here) included.
  ASSERT_GE(j["output"].size(), 1u);
  ASSERT_EQ(j["output"][0]["type"], "reasoning");
  const std::string reasoning = j["output"][0]["content"][0]["text"];
  const bool answered = j["output"].size() == 2;
  EXPECT_EQ(u["output_tokens_details"]["reasoning_tokens"], reasoning.size() + (answered ? 1 : 0));
  if (answered) {
    EXPECT_EQ(j["output"][1]["type"], "message");
  }

  auto s = f.post("/v1/responses", responses_body("hello", 12, true));
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  EXPECT_EQ(s->body.find("[DONE]"), std::string::npos);
  auto events = sse_events(s->body);
  ASSERT_GE(events.size(), 8u);
  EXPECT_EQ(events.back().first, "response.incomplete");
  json streamed = response_from_events(events);
  EXPECT_EQ(without_ids(streamed["output"]), without_ids(j["output"]));
  EXPECT_EQ(streamed["usage"]["output_tokens_details"], u["output_tokens_details"]);
  EXPECT_EQ(streamed["usage"]["input_tokens"], u["input_tokens"]);

  // Non-thinking mode: one message, no reasoning tokens, completed when the model stops.
  json plain = responses_body("hi", 5);
  plain["reasoning"] = {{"effort", "none"}};
  plain["instructions"] = "Be brief.";
  json p = json::parse(f.post("/v1/responses", plain)->body);
  ASSERT_EQ(p["output"].size(), 1u) << p;
  EXPECT_EQ(p["output"][0]["content"][0]["text"].get<std::string>().size(), 5u);
  EXPECT_EQ(p["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
  EXPECT_EQ(p["instructions"], "Be brief.");
  EXPECT_EQ(p["reasoning"]["effort"], "none");
  auto metrics = f.client->Get("/metrics");
  EXPECT_NE(metrics->body.find("dsv4_requests_total{endpoint=\"/v1/responses\",status=\"200\"} 3"), std::string::npos)
      << metrics->body;
}

// A server stop text (--stop) ends every answer as the model's end of turn: the text stops
// before it, the finish is a plain stop in every API (no stop_sequence reported, Responses
// completed), streamed or not; a request's own stop string is still reported as such.
TEST(HttpServer, ServerStopTextEndsTheTurn) {
  ServerFixture plain;
  json chat = chat_body("x", 30);
  chat["reasoning_effort"] = "none";
  const std::string text = json::parse(plain.post("/v1/chat/completions", chat)->body)["choices"][0]["message"]["content"];
  ASSERT_EQ(text.size(), 30u);
  const std::string end = text.substr(10, 2);
  const std::string before = text.substr(0, text.find(end));
  ServerOptions o;
  o.stop = {end};
  ServerFixture f(o);

  json c = json::parse(f.post("/v1/chat/completions", chat)->body);
  EXPECT_EQ(c["choices"][0]["message"]["content"], before);
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["completion_tokens"], before.size() + 2);

  json m = messages_body("x", 30);
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream);
    m["stream"] = stream;
    auto r = f.post("/v1/messages", m);
    ASSERT_EQ(r->status, 200) << r->body;
    json msg = stream ? message_from_events(sse_events(r->body)) : json::parse(r->body);
    EXPECT_EQ(msg["content"][0]["text"], before) << msg;
    EXPECT_EQ(msg["stop_reason"], "end_turn");
    EXPECT_TRUE(msg["stop_sequence"].is_null());
  }
  m["stream"] = false;
  m["stop_sequences"] = {end};
  json asked = json::parse(f.post("/v1/messages", m)->body);
  EXPECT_EQ(asked["stop_reason"], "stop_sequence");
  EXPECT_EQ(asked["stop_sequence"], end);

  json resp = responses_body("x", 30);
  resp["reasoning"] = {{"effort", "none"}};
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream);
    resp["stream"] = stream;
    auto r = f.post("/v1/responses", resp);
    ASSERT_EQ(r->status, 200) << r->body;
    json out = stream ? response_from_events(sse_events(r->body)) : json::parse(r->body);
    EXPECT_EQ(out["status"], "completed") << out;
    EXPECT_EQ(out["output"][0]["content"][0]["text"], before);
  }

  json comp = {{"model", "fake-model"}, {"prompt", "def f():"}, {"max_tokens", 30}, {"temperature", 0}};
  json raw = json::parse(plain.post("/v1/completions", comp)->body);
  const std::string raw_text = raw["choices"][0]["text"];
  json cut = json::parse(f.post("/v1/completions", comp)->body);
  EXPECT_EQ(cut["choices"][0]["text"], raw_text.substr(0, raw_text.find(end)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], raw_text.find(end) == std::string::npos ? "length" : "stop");
}

TEST(HttpServer, ResponsesFunctionCallRoundTrip) {
  ServerFixture f;
  // Outputs drawn from {'a', '#'}: every '#' is a call of the first tool for the byte codec.
  allow_only(f.engine, "a#");
  json body = responses_body("call", 24);
  body["reasoning"] = {{"effort", "none"}};
  body["tools"] = {{{"type", "function"}, {"name", "lookup"}, {"parameters", {{"type", "object"}}}, {"strict", false}}};
  json first = json::parse(f.post("/v1/responses", body)->body);
  std::vector<json> calls;
  for (const json& item : first["output"])
    if (item["type"] == "function_call") calls.push_back(item);
  ASSERT_FALSE(calls.empty()) << "the fake model never produced '#': " << first;
  EXPECT_EQ(calls[0]["name"], "lookup");
  EXPECT_EQ(calls[0]["call_id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(json::parse(calls[0]["arguments"].get<std::string>()), json({{"n", 0}}));
  EXPECT_EQ(calls[0]["id"].get<std::string>().rfind("fc_", 0), 0u);
  EXPECT_EQ(first["tools"][0]["name"], "lookup");

  // Streamed: the same items, the arguments as deltas.
  body["stream"] = true;
  json streamed = response_from_events(sse_events(f.post("/v1/responses", body)->body));
  EXPECT_EQ(without_ids(streamed["output"]), without_ids(first["output"]));

  // The tool's result continues the stored response; the prompt holds the whole conversation.
  json next = {{"model", "fake-model"},
               {"previous_response_id", first["id"]},
               {"input", {{{"type", "function_call_output"}, {"call_id", calls[0]["call_id"]}, {"output", "42"}}}},
               {"tools", body["tools"]},
               {"reasoning", {{"effort", "none"}}},
               {"max_output_tokens", 3}};
  auto r = f.post("/v1/responses", next);
  ASSERT_EQ(r->status, 200) << r->body;
  json second = json::parse(r->body);
  EXPECT_EQ(second["previous_response_id"], first["id"]);
  EXPECT_GT(second["usage"]["input_tokens"], first["usage"]["input_tokens"]);
  // The same conversation sent as items renders the same prompt.
  json items = json::array({{{"type", "message"}, {"role", "user"}, {"content", "call"}}});
  for (const json& item : first["output"]) items.push_back(item);
  items.push_back(next["input"][0]);
  json explicit_items = next;
  explicit_items.erase("previous_response_id");
  explicit_items["input"] = items;
  json third = json::parse(f.post("/v1/responses", explicit_items)->body);
  EXPECT_EQ(third["usage"]["input_tokens"], second["usage"]["input_tokens"]);

  // An unknown id is a 404 with OpenAI's code; so is a response that was not stored.
  next["previous_response_id"] = "resp_nope";
  auto missing = f.post("/v1/responses", next);
  expect_openai_error(missing, 404, "resp_nope");
  EXPECT_EQ(json::parse(missing->body)["error"]["code"], "previous_response_not_found");
  body["stream"] = false;
  body["store"] = false;
  json unstored = json::parse(f.post("/v1/responses", body)->body);
  EXPECT_EQ(unstored["store"], false);
  next["previous_response_id"] = unstored["id"];
  expect_openai_error(f.post("/v1/responses", next), 404, "not found");
}

TEST(HttpServer, ResponsesErrorsUseOpenAIShapes) {
  ServerFixture f({}, {}, /*context=*/64);
  json b = responses_body("x", 3);
  b["tools"] = {{{"type", "web_search"}}};
  expect_openai_error(f.post("/v1/responses", b), 400, "'web_search'");
  b = responses_body("x", 3);
  b["text"] = {{"format", {{"type", "json_schema"}, {"name", "x"}, {"schema", {{"type", "string"}, {"pattern", "a"}}}}}};
  expect_openai_error(f.post("/v1/responses", b), 400, "unsupported keyword 'pattern'");
  b = responses_body(json::array({{{"role", "user"}, {"content", {{{"type", "input_image"}, {"image_url", "x"}}}}}}), 3);
  expect_openai_error(f.post("/v1/responses", b), 400, "input_image");
  b = responses_body("x", 3);
  b["model"] = "gpt-5";
  expect_openai_error(f.post("/v1/responses", b), 404, "gpt-5");
  expect_openai_error(f.client->Post("/v1/responses", "{oops", "application/json"), 400, "JSON");
  expect_openai_error(f.post("/v1/responses", responses_body(std::string(100, 'a'), 3)), 400, "context");
  f.codec.revision = text::EncoderRevision::v4;
  b = responses_body("x", 3);
  b["reasoning"] = {{"effort", "extreme"}};
  expect_openai_error(f.post("/v1/responses", b), 400, "levels high, max");
}

}  // namespace
}  // namespace dsv4::server

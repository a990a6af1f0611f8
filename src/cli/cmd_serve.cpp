// `dsv4 serve [-m DIR] [--host 127.0.0.1] [--port 8000]`: the OpenAI- and Anthropic-compatible server
// (server/http_server.h). Binds loopback unless --host says otherwise; --port 0 picks a free
// port. The "listening on" line on stderr gives the address.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "cli/data_dir.h"
#include "cli/generation_options.h"
#include "io/integrity.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"
#include "server/text_codec.h"

namespace dsv4::cli {

namespace {
// Overwrites the values of --api-key in the process's arguments once they are parsed, so that
// ps and /proc/PID/cmdline show stars from then on. (Before that, they were visible: hence the
// warning, and --api-key-file.)
void hide_api_keys(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* key = nullptr;
    if (std::strcmp(argv[i], "--api-key") == 0 && i + 1 < argc) key = argv[++i];
    else if (std::strncmp(argv[i], "--api-key=", 10) == 0) key = argv[i] + 10;
    if (key) std::memset(key, '*', std::strlen(key));
  }
}
}  // namespace

int cmd_serve(int argc, char** argv) {
  CLI::App app{"Serve the OpenAI- and Anthropic-compatible HTTP API"};
  ModelFlags model;
  add_model_flags(app, model);
  server::ServerOptions so;
  runtime::SchedulerOptions sched;
  std::vector<std::string> keys;
  std::string key_file;
  size_t max_body = so.max_body_bytes;
  app.add_option("--host", so.host, "address to bind (default 127.0.0.1: this machine only)");
  app.add_option("--port", so.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--model-name", so.model_id, "model id clients send (default: the directory name)");
  app.add_option("--api-key", keys,
                 "require 'Authorization: Bearer KEY' (repeatable; visible to local users in ps: prefer --api-key-file)");
  app.add_option("--api-key-file", key_file, "file with one API key per line");
  app.add_option("--allowed-host", so.allowed_hosts,
                 "a Host name clients may use besides localhost, 127.0.0.1, [::1] and the bound address (repeatable)");
  app.add_option("--cors-origin", so.cors_origins,
                 "a browser origin (scheme://host[:port]) allowed to call the API; none by default (repeatable)");
  app.add_option("--max-body-bytes", max_body, "largest request body accepted (413 beyond)")->check(CLI::PositiveNumber);
  app.add_option("--max-running", sched.max_running, "sequences decoding at once")->check(CLI::Range(1, 1024));
  app.add_option("--max-queue", sched.max_queued, "requests waiting for a slot (429 beyond)")->check(CLI::Range(0, 100000));
  app.add_option("--step-tokens", sched.step_token_budget, "tokens per forward step (decode + prefill chunks)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--cache-bytes", sched.cache_bytes,
                 "memory of the prefix cache's state snapshots, e.g. 4GiB (least recently used go first; 0 = no cache)")
      ->transform(CLI::AsSizeValue(false));
  std::string kv_dir;
  uint64_t kv_dir_bytes = uint64_t(16) << 30;
  app.add_option("--kv-cache-dir", kv_dir,
                 "also keep the prefix cache's snapshots as files in DIR, so that a restarted server resumes from them");
  app.add_option("--kv-cache-dir-bytes", kv_dir_bytes,
                 "total size of the files in --kv-cache-dir, e.g. 16GiB (least recently used go first)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--snapshot-interval", sched.snapshot_interval,
                 "tokens between the prefix cache's snapshots inside a prompt, besides message starts (0 = none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--default-max-tokens", so.default_max_tokens,
                 "generation cap for requests without max_tokens (0 = until EOS or the context is full)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--stop", so.stop,
                 "a text that ends every answer as the model's end of turn (repeatable; for models that do not end turns with EOS)");
  // The transport's deadlines and connection cap (server/http_transport.h), in seconds here.
  auto seconds = [](std::chrono::milliseconds ms) { return double(ms.count()) / 1000.0; };
  double header_s = seconds(so.limits.header_timeout), body_s = seconds(so.limits.body_timeout),
         idle_s = seconds(so.limits.idle_timeout), write_s = seconds(so.limits.write_timeout);
  app.add_option("--header-timeout", header_s, "seconds a client has to send a request's head")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--body-timeout", body_s, "seconds a client has to send a request's body")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--idle-timeout", idle_s, "seconds an idle keep-alive connection is kept")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--write-timeout", write_s, "seconds one write may wait for a client that does not read")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--max-pending-body-bytes", so.limits.max_pending_body_bytes,
                 "memory for request bodies being received, all connections together (503 beyond)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-connections", so.limits.max_connections,
                 "open connections at most (503 beyond; 0 = from the descriptor limit, at most 4096)")
      ->check(CLI::Range(0, 1 << 20));
  double health_step_s = -1;   // -1: --step-timeout's value
  app.add_option("--health-step-timeout", health_step_s,
                 "GET /health answers 503 while an engine step has been running longer than this many seconds (0 = "
                 "never; default: --step-timeout, 120)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--audit-log", so.audit_log_path, "append one JSON line per request to FILE");
  app.add_flag("--audit-content", so.audit_content, "also log prompt and output text in the audit log");
  CLI11_PARSE(app, argc, argv);
  auto ms = [](double s) { return std::chrono::milliseconds(int64_t(s * 1000.0 + 0.5)); };
  so.limits.header_timeout = ms(header_s);
  so.limits.body_timeout = ms(body_s);
  so.limits.idle_timeout = ms(idle_s);
  so.limits.write_timeout = ms(write_s);
  so.health_step_timeout = ms(health_step_s < 0 ? model.step_timeout : health_step_s);
  if (!keys.empty()) {
    hide_api_keys(argc, argv);
    std::fprintf(stderr,
                 "dsv4 serve: warning: --api-key puts the key on the command line, where every local user can read "
                 "it (ps, /proc); use --api-key-file FILE instead\n");
  }
  so.max_body_bytes = max_body;
  sched.step_token_budget = std::max<int64_t>(sched.step_token_budget, sched.max_running);
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "dsv4 serve: %s\n", s.to_string().c_str());
    return 1;
  };
  if (so.limits.max_pending_body_bytes < so.max_body_bytes)
    return fail(Status::invalid_argument("--max-pending-body-bytes must be at least --max-body-bytes (" +
                                         std::to_string(so.max_body_bytes) + "): no body could be received"));
  if (Status s = default_to_demo_model(model.dir); !s.ok()) return fail(s);
  Result<std::string> vendored = vendored_tokenizer_dir();
  if (!vendored.ok()) return fail(vendored.status());
  if (so.model_id.empty()) so.model_id = std::filesystem::path(model.dir).lexically_normal().filename().string();
  if (so.model_id.empty()) so.model_id = std::filesystem::path(model.dir).lexically_normal().parent_path().filename().string();
  for (auto& k : keys) so.api_keys.add(k);
  if (!key_file.empty()) {
    auto fk = server::ApiKeys::from_file(key_file);
    if (!fk.ok()) return fail(fk.status());
    for (auto& k : keys) fk->add(k);
    so.api_keys = std::move(*fk);
  }

  auto revision = model_encoder_revision(model.dir);
  if (!revision.ok()) return fail(revision.status());
  auto codec = server::make_text_codec(model.dir, *vendored, *revision);
  if (!codec.ok()) return fail(codec.status());
  auto engine = load_engine(model);
  if (!engine.ok()) return fail(engine.status());

  // SIGINT / SIGTERM stop the server from a thread of their own (stop() is not
  // async-signal-safe). Blocked before any other thread starts, so they all inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (Status s = apply_speculative_flags(model, **engine, sched); !s.ok()) return fail(s);
  std::unique_ptr<runtime::PrefixStore> disk;
  if (!kv_dir.empty()) {
    // States are resumed only on the weights they were computed with, and by an engine that
    // keeps the same drafter state (speculative decoding on or off).
    auto fingerprint = io::checkpoint_fingerprint(model.dir);
    if (!fingerprint.ok()) return fail(fingerprint.status());
    runtime::PrefixStoreOptions po;
    po.dir = kv_dir;
    po.max_bytes = kv_dir_bytes;
    po.fingerprint = *fingerprint + ((*engine)->max_draft_tokens() > 0 ? "+drafter" : "");
    auto opened = runtime::PrefixStore::open(**engine, po);
    if (!opened.ok()) return fail(opened.status());
    disk = std::move(opened).value();
  }
  runtime::Scheduler scheduler(**engine, sched, std::move(disk));
  server::HttpServer http(scheduler, **codec, so);
  if (Status st = http.bind(); !st.ok()) return fail(st);
  std::fprintf(stderr,
               "dsv4 serve: listening on http://%s:%d (model '%s', chat encoder %s, context %lld, up to %d running + "
               "%d queued%s)\n",
               so.host.c_str(), http.port(), so.model_id.c_str(),
               std::string(text::encoder_revision_name(*revision)).c_str(), (long long)scheduler.max_context(),
               sched.max_running, sched.max_queued, so.api_keys.enabled() ? ", API key required" : "");
  std::fflush(stderr);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    // Open requests end with a "shutting down" error (a stream gets an error event) so that the
    // HTTP workers can be joined.
    scheduler.shutdown();
    http.stop();
  });
  Status st = http.run();
  // Wake the signal thread if the server stopped on its own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!st.ok()) return fail(st);
  std::fprintf(stderr, "dsv4 serve: stopped\n");
  return 0;
}

}  // namespace dsv4::cli

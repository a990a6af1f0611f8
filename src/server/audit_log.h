// The audit log (--audit-log FILE): one JSON object per finished generation request and per
// request refused at the edge (a failed authentication, a refused Host or Origin, a bad body),
// appended and flushed at once. Records the time, the client's address, the hashed key id, the
// endpoint, model, token counts, finish reason, HTTP status and latency; never key material.
// Prompt and output text are recorded only with --audit-content. A new log file is created
// 0600 (it may hold prompts); an existing one that others can read gets a warning.
//
// Thread-safety: write() may be called from any thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"

namespace dsv4::server {

struct AuditRecord {
  std::string client;         // the peer's "address:port" ("[v6]:port")
  std::string key_id;         // empty when the server has no API keys or the key was refused
  std::string endpoint;
  std::string model;
  int http_status = 200;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  std::string finish_reason;  // empty for requests that failed before generation
  double latency_ms = 0;
  std::string prompt_text;    // written only with include_content
  std::string output_text;
};

class AuditLog {
 public:
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path, bool include_content);
  ~AuditLog();
  void write(const AuditRecord& r);
  // The JSON line for a record (no trailing newline); `now_unix_ms` is the time field.
  static std::string format(const AuditRecord& r, bool include_content, int64_t now_unix_ms);

 private:
  AuditLog(std::FILE* f, bool include_content) : file_(f), include_content_(include_content) {}
  std::mutex mu_;
  std::FILE* file_;
  bool include_content_;
};

}  // namespace dsv4::server

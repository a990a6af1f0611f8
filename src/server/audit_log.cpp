#include "server/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

namespace dsv4::server {

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, bool include_content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(path + ": cannot open the audit log: " + std::strerror(errno));
  // An existing file keeps the mode its owner gave it (a log shipper's group may need to read
  // it), but a log readable by everyone should not go unnoticed.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
    std::fprintf(stderr, "dsv4 serve: warning: the audit log %s is readable by every local user (mode %03o)%s\n",
                 path.c_str(), unsigned(st.st_mode & 0777), include_content ? " and will hold prompts" : "");
  std::FILE* f = ::fdopen(fd, "a");
  if (!f) {
    const int err = errno;
    ::close(fd);
    return Status::io_error(path + ": cannot open the audit log: " + std::strerror(err));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(f, include_content));
}

AuditLog::~AuditLog() {
  if (file_) std::fclose(file_);
}

std::string AuditLog::format(const AuditRecord& r, bool include_content, int64_t now_unix_ms) {
  const std::time_t secs = std::time_t(now_unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, int(now_unix_ms % 1000));
  nlohmann::json j = {
      {"time", ts},
      {"client", r.client},
      {"key_id", r.key_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.key_id)},
      {"endpoint", r.endpoint},
      {"model", r.model},
      {"status", r.http_status},
      {"prompt_tokens", r.prompt_tokens},
      {"generated_tokens", r.generated_tokens},
      {"finish_reason", r.finish_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.finish_reason)},
      {"latency_ms", double(int64_t(r.latency_ms * 1000)) / 1000},
  };
  if (include_content) {
    j["prompt"] = r.prompt_text;
    j["output"] = r.output_text;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AuditLog::write(const AuditRecord& r) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string line = format(r, include_content_, now) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace dsv4::server

// Server metrics in the Prometheus text exposition format (GET /metrics): requests by endpoint
// and HTTP status, prompt and generated tokens, queue depth, running sequences, and histograms
// of time to first token and inter-token latency.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/scheduler.h"

namespace dsv4::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, ascending; +Inf is implied
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void render(const std::string& name, std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int http_status);
  // A stream whose client left before its end: its status (200) was counted when the stream
  // began, so the abort is counted apart.
  void count_aborted_stream(const std::string& endpoint);
  void add_tokens(int64_t prompt, int64_t generated);
  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_itl(double seconds) { itl_.observe(seconds); }
  // With the gauges of the scheduler's stats, sampled at render time.
  std::string render(const runtime::SchedulerStats& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> aborted_streams_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_;
};

}  // namespace dsv4::server

#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace dsv4::server {

namespace {
std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// The HELP and TYPE lines that introduce a Prometheus metric family.
void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n";
  out += std::string("# TYPE ") + name + " " + type + "\n";
}

// A family with a single unlabelled sample.
void scalar(std::string& out, const char* name, const char* type, const char* help, uint64_t value) {
  family(out, name, type, help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i] += 1;
  sum_ += v;
  count_ += 1;
}

void Histogram::render(const std::string& name, std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + fmt_double(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + fmt_double(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::count_request(const std::string& endpoint, int http_status) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{endpoint, http_status}] += 1;
}

void Metrics::count_aborted_stream(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_streams_[endpoint] += 1;
}

void Metrics::add_tokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += uint64_t(std::max<int64_t>(0, prompt));
  generated_tokens_ += uint64_t(std::max<int64_t>(0, generated));
}

std::string Metrics::render(const runtime::SchedulerStats& g) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    family(out, "dsv4_requests_total", "counter", "HTTP requests by endpoint and status code.");
    for (const auto& [key, n] : requests_)
      out += "dsv4_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
    family(out, "dsv4_streams_aborted_total", "counter",
           "Streamed responses whose client left before the end (their status was counted at the start).");
    for (const auto& [endpoint, n] : aborted_streams_)
      out += "dsv4_streams_aborted_total{endpoint=\"" + endpoint + "\"} " + std::to_string(n) + "\n";
    scalar(out, "dsv4_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", prompt_tokens_);
    scalar(out, "dsv4_generation_tokens_total", "counter", "Generated tokens of finished requests.", generated_tokens_);
  }
  scalar(out, "dsv4_queue_depth", "gauge", "Requests waiting for a free sequence slot.", uint64_t(g.queued));
  scalar(out, "dsv4_running_sequences", "gauge", "Sequences prefilling or decoding.", uint64_t(g.running));
  scalar(out, "dsv4_prefix_cache_hits_total", "counter", "Requests that resumed from a cached state snapshot.",
         uint64_t(g.prefix_hits));
  scalar(out, "dsv4_prefix_cache_tokens_total", "counter", "Prompt tokens taken from cached state snapshots.",
         uint64_t(g.prefix_tokens_reused));
  scalar(out, "dsv4_prefix_cache_snapshots", "gauge", "State snapshots the prefix cache holds in memory.",
         g.prefix_snapshots);
  scalar(out, "dsv4_prefix_cache_bytes", "gauge", "Memory of the prefix cache's state snapshots.",
         g.prefix_cache_bytes);
  scalar(out, "dsv4_spec_rounds_total", "counter", "Speculative verify rounds (a chunk of anchor + drafts).",
         g.spec_rounds);
  scalar(out, "dsv4_spec_draft_tokens_total", "counter", "Draft tokens verified.", g.drafted_tokens);
  scalar(out, "dsv4_spec_accepted_tokens_total", "counter", "Draft tokens accepted into the output.",
         g.accepted_tokens);
  family(out, "dsv4_spec_mean_accepted_length", "gauge", "Accepted drafts per verify round, since start.");
  out += "dsv4_spec_mean_accepted_length " +
         fmt_double(g.spec_rounds ? double(g.accepted_tokens) / double(g.spec_rounds) : 0.0) + "\n";
  family(out, "dsv4_step_running_seconds", "gauge", "How long the engine step in progress has run (0: none).");
  out += "dsv4_step_running_seconds " + fmt_double(g.step_running_s) + "\n";
  family(out, "dsv4_time_to_first_token_seconds", "histogram", "Time from request arrival to its first token.");
  ttft_.render("dsv4_time_to_first_token_seconds", out);
  family(out, "dsv4_inter_token_latency_seconds", "histogram", "Time between consecutive tokens of a request.");
  itl_.render("dsv4_inter_token_latency_seconds", out);
  return out;
}

}  // namespace dsv4::server

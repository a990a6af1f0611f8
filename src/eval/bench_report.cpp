// Formatting of a BenchReport (eval/bench.h): one JSON object, or a table for people.
#include <cstdio>
#include <string>
#include <string_view>

#include "eval/bench.h"

namespace dsv4::eval {

namespace {

constexpr double kGiB = double(1ull << 30), kMiB = double(1ull << 20);

// printf into a std::string (the table is a few dozen lines; no hot path).
template <typename... Args>
void appendf(std::string& out, const char* fmt, Args... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  out += buf;
}

bool any_of_synthetic(const BenchReport& r) {
  for (const auto& d : r.decode)
    if (d.synthetic) return true;
  return false;
}

// One kind of exchange per token and per step: `rows` counts a token once per MoE layer.
struct ExchangeRates {
  double bytes_per_token = 0;   // in + out
  double ms_per_step = 0;       // one forward pass (every MoE layer)
};

ExchangeRates exchange_rates(const runtime::ExchangeTally& t, int64_t moe_layers) {
  ExchangeRates x;
  if (t.rows == 0 || moe_layers == 0) return x;
  x.bytes_per_token = (t.bytes_in + t.bytes_out) * double(moe_layers) / double(t.rows);
  x.ms_per_step = 1e3 * t.seconds * double(moe_layers) / double(t.calls);
  return x;
}

// {"0": bytes, "1": bytes}: node id -> bytes (JSON keys are strings).
nlohmann::ordered_json node_bytes_json(const std::map<int, uint64_t>& nodes) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [node, bytes] : nodes) j[std::to_string(node)] = bytes;
  return j;
}

// "node 0 1.234 GiB, node 1 0.000 GiB (runs on node 1)"; "unknown" when empty.
std::string node_bytes_text(const std::map<int, uint64_t>& nodes, int home) {
  if (nodes.empty()) return "unknown";
  std::string s;
  for (const auto& [node, bytes] : nodes) appendf(s, "%snode %d %.3f GiB", s.empty() ? "" : ", ", node, double(bytes) / kGiB);
  if (home >= 0) appendf(s, " (runs on node %d)", home);
  else appendf(s, " (its CPUs span several nodes)");
  return s;
}

nlohmann::ordered_json ranks_json(const BenchReport& r) {
  using J = nlohmann::ordered_json;
  J ranks = J::array();
  for (const runtime::RankFigures& f : r.ranks) {
    const ExchangeRates dec = exchange_rates(f.exchange.one_row, r.moe_layers);
    const ExchangeRates pre = exchange_rates(f.exchange.many_rows, r.moe_layers);
    ranks.push_back(J{{"rss_bytes", f.rss_bytes},
                      {"rss_file_bytes", f.rss_file_bytes},
                      {"exchange_bytes_per_decoded_token", dec.bytes_per_token},
                      {"exchange_ms_per_decode_step", dec.ms_per_step},
                      {"exchange_bytes_per_prefill_token", pre.bytes_per_token},
                      {"exchange_ms_per_prefill_step", pre.ms_per_step},
                      {"weight_bytes_per_node", node_bytes_json(f.weight_node_bytes)},
                      {"numa_node", f.numa_node}});
  }
  return ranks;
}

}  // namespace

const DecodeFigure* shortest_decode(const BenchReport& r) {
  const DecodeFigure* best = nullptr;
  for (const auto& d : r.decode)
    if (!best || d.context < best->context) best = &d;
  return best;
}

nlohmann::ordered_json bench_json(const BenchReport& r) {
  using J = nlohmann::ordered_json;
  J prefill = J::array(), decode = J::array();
  for (const auto& p : r.prefill)
    prefill.push_back(J{{"tokens", p.tokens}, {"tok_s", p.tok_s}, {"seconds", p.seconds}, {"runs", p.runs}});
  for (const auto& d : r.decode)
    decode.push_back(J{{"context", d.context}, {"fill", d.synthetic ? "synthetic" : d.context > 0 ? "prefill" : "none"},
                       {"tok_s", d.tok_s}, {"mean_tok_s", d.mean_tok_s}, {"tokens", d.tokens}, {"fill_s", d.fill_s},
                       {"weight_GBps", d.weight_GBps},
                       {"ms_per_token", J{{"attention", d.attention_ms}, {"ffn", d.ffn_ms}, {"head", d.head_ms},
                                          {"other", d.other_ms}}}});
  const WeightTraffic& w = r.weights;
  J j{
      {"model", r.model_dir},
      {"threads", r.threads},
      {"kernels", r.kernels},
      {"load_s", r.load_s},
      {"first_token_s", r.first_token_s},
      {"prefill", prefill},
      {"decode", decode},
      {"synthetic_context", any_of_synthetic(r)},
      {"weight_bytes_per_token", w.total()},
      {"weight_bytes", J{{"attention", w.attention}, {"experts", w.experts}, {"shared", w.shared},
                         {"head", w.head}, {"engram", w.engram}, {"other", w.other}}},
      {"measured_bw_GBps", r.measured_bw_GBps},
      {"decode_fraction_of_bound", r.decode_fraction_of_bound},
      {"memory", J{{"rss_after_load_bytes", r.rss_after_load},
                   {"rss_end_bytes", r.rss_end},
                   {"rss_anon_end_bytes", r.rss_anon_end},
                   {"rss_file_end_bytes", r.rss_file_end},
                   {"file_pmd_mapped_end_bytes", r.file_pmd_mapped_end},
                   {"rss_peak_bytes", r.rss_peak},
                   {"weight_bytes_per_node", node_bytes_json(r.weight_node_bytes)},
                   {"numa_node", r.numa_node},
                   {"state_fixed_bytes", r.state_fixed_bytes},
                   {"state_tokens", r.state_tokens},
                   {"state_bytes_per_token", r.state_bytes_per_token},
                   {"state_bytes_per_token_with_slack", r.state_bytes_per_token_live},
                   {"spec_state_bytes_per_token_bf16", r.spec_state_bytes_per_token}}},
  };
  if (!r.ranks.empty()) j["ranks"] = ranks_json(r);
  return j;
}

std::string bench_table(const BenchReport& r) {
  std::string s;
  appendf(s, "model      %s\nthreads    %d\nkernels    %s\n", r.model_dir.c_str(), r.threads, r.kernels.c_str());
  appendf(s, "load       %.3f s (Engine::load: validate, map, populate unless --no-populate)\n", r.load_s);
  appendf(s, "1st token  %.3f s (warms the thread pool and scratch; excluded below)\n\n", r.first_token_s);

  appendf(s, "%-10s %10s %10s %6s\n", "prefill", "tokens", "tok/s", "runs");
  for (const auto& p : r.prefill) appendf(s, "%-10s %10lld %10.1f %6d\n", "", (long long)p.tokens, p.tok_s, p.runs);

  appendf(s, "\n%-10s %10s %10s %10s %12s %10s\n", "decode", "context", "tok/s", "mean", "weight GB/s", "fill (s)");
  bool any_synthetic = false;
  for (const auto& d : r.decode) {
    appendf(s, "%-10s %10lld %10.2f %10.2f %12.2f %10.2f%s\n", "", (long long)d.context, d.tok_s, d.mean_tok_s,
            d.weight_GBps, d.fill_s, d.synthetic ? "  SYNTHETIC state" : "");
    any_synthetic = any_synthetic || d.synthetic;
  }
  appendf(s, "  (tok/s = 1 / median per-token latency; mean = tokens / total; fill = prefill to the context first)\n");
  if (any_synthetic)
    appendf(s, "  (SYNTHETIC: the context was filled with pseudo-random entries of the right shapes, not prefilled;"
               " decode cost is real, decoded tokens are not)\n");

  const WeightTraffic& w = r.weights;
  appendf(s, "\nweights read per decoded token: %.2f MiB\n", double(w.total()) / kMiB);
  const std::pair<const char*, uint64_t> parts[] = {
      {"attention", w.attention}, {"experts", w.experts}, {"shared", w.shared}, {"head", w.head},
      {"engram", w.engram}, {"other", w.other}};
  for (const auto& [name, b] : parts)
    if (b > 0 || std::string_view(name) != "engram")   // the Engram line for V4.1 only
      appendf(s, "  %-10s %10.2f MiB %6.1f %%\n", name, double(b) / kMiB,
            w.total() ? 100.0 * double(b) / double(w.total()) : 0.0);

  if (r.measured_bw_GBps > 0)
    appendf(s, "\nmeasured read bandwidth: %.2f GB/s; decode (shortest context) = %.1f %% of that bound\n",
            r.measured_bw_GBps, 100.0 * r.decode_fraction_of_bound);

  if (const DecodeFigure* d = shortest_decode(r)) {
    appendf(s, "\ndecode step by part at context %lld (mean ms per token; GB/s = the part's weights / its time):\n",
            (long long)d->context);
    const struct {
      const char* name;
      double ms;
      uint64_t bytes;
    } rows[] = {{"attention", d->attention_ms, w.attention},
                {"ffn", d->ffn_ms, w.experts + w.shared},
                {"head", d->head_ms, w.head}};
    for (const auto& p : rows) {
      const double gbps = p.ms > 0 ? double(p.bytes) / (p.ms * 1e6) : 0.0;
      appendf(s, "  %-10s %9.2f ms %10.2f MiB %8.2f GB/s", p.name, p.ms, double(p.bytes) / kMiB, gbps);
      if (r.measured_bw_GBps > 0) appendf(s, " %6.1f %% of bound", 100.0 * gbps / r.measured_bw_GBps);
      appendf(s, "\n");
    }
    appendf(s, "  %-10s %9.2f ms  (embedding, hc mixes and norms between sublayers, bookkeeping)\n", "other",
            d->other_ms);
  }

  appendf(s, "\nresident memory: %.3f GiB after load, %.3f GiB at the end (%.3f GiB the engine's own, %.3f GiB mapped"
             " weights, %.3f GiB of them on 2 MiB pages), %.3f GiB peak\n",
          double(r.rss_after_load) / kGiB, double(r.rss_end) / kGiB, double(r.rss_anon_end) / kGiB,
          double(r.rss_file_end) / kGiB, double(r.file_pmd_mapped_end) / kGiB, double(r.rss_peak) / kGiB);
  appendf(s, "weights in memory by NUMA node: %s\n", node_bytes_text(r.weight_node_bytes, r.numa_node).c_str());
  appendf(s, "sequence state: %.2f MiB empty; +%.1f B/token over %lld tokens (%.1f B/token with vector slack);"
             " spec §8 layout: %.1f B/token\n",
          double(r.state_fixed_bytes) / kMiB, r.state_bytes_per_token, (long long)r.state_tokens,
          r.state_bytes_per_token_live, r.spec_state_bytes_per_token);
  if (!r.ranks.empty()) {
    appendf(s, "\nranks (mpirun): resident memory, and the expert exchange (bytes in + out per token, ms per step)\n");
    appendf(s, "%6s %10s %10s %14s %12s %14s %12s\n", "rank", "RSS GiB", "file GiB", "decode B/tok", "decode ms",
            "prefill B/tok", "prefill ms");
    for (size_t k = 0; k < r.ranks.size(); ++k) {
      const runtime::RankFigures& f = r.ranks[k];
      const ExchangeRates dec = exchange_rates(f.exchange.one_row, r.moe_layers);
      const ExchangeRates pre = exchange_rates(f.exchange.many_rows, r.moe_layers);
      appendf(s, "%6zu %10.3f %10.3f %14.0f %12.3f %14.0f %12.3f\n", k, f.rss_bytes / kGiB, f.rss_file_bytes / kGiB,
              dec.bytes_per_token, dec.ms_per_step, pre.bytes_per_token, pre.ms_per_step);
    }
    appendf(s, "weights in memory by NUMA node, per rank:\n");
    for (size_t k = 0; k < r.ranks.size(); ++k)
      appendf(s, "%6zu %s\n", k, node_bytes_text(r.ranks[k].weight_node_bytes, r.ranks[k].numa_node).c_str());
  }
  return s;
}

}  // namespace dsv4::eval

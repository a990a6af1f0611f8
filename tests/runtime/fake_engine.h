// A deterministic stand-in for runtime::Engine, for testing the scheduler's batching,
// chunking, cancellation and prefix-reuse logic without a model. Its logits are a hash of the
// sequence's whole token history, so any mistake in what the scheduler feeds (a skipped,
// repeated or misordered token, state shared between sequences) changes the outputs.
// Test-only: the production path always uses the real Engine.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/engine.h"

namespace dsv4::test {

class FakeSequence : public runtime::Sequence {
 public:
  std::vector<int32_t> tokens;
  int64_t open_chunk = 0;                          // tokens of an uncommitted verify chunk
  std::atomic<int64_t>* reserve_sink = nullptr;   // receives the last reserve() argument
  int64_t position() const override { return int64_t(tokens.size()); }
  void reserve(int64_t positions) override {
    if (reserve_sink) reserve_sink->store(positions);
  }
  std::unique_ptr<runtime::Sequence> clone() const override { return std::make_unique<FakeSequence>(*this); }
  size_t memory_bytes() const override { return tokens.size() * sizeof(int32_t); }
};

class FakeEngine : public runtime::Engine {
 public:
  explicit FakeEngine(int64_t vocab = 64, int64_t max_context = 512, int32_t eos = 1) : max_context_(max_context) {
    config_.vocab_size = vocab;
    config_.eos_token_id = eos;
  }
  const io::ModelConfig& config() const override { return config_; }
  int64_t max_context() const override { return max_context_; }
  std::unique_ptr<runtime::Sequence> new_sequence() const override {
    live_sequences.fetch_add(1);
    auto s = std::make_unique<FakeSequence>();
    s->reserve_sink = &last_reserve;
    return s;
  }

  // logits[v] in [-4, 4): a hash of (history, v). EOS is pushed down unless eos_bias says
  // otherwise, so generations run to max_tokens by default.
  static float logit_of(const std::vector<int32_t>& history, int64_t v) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : history) h = (h ^ uint64_t(t)) * 1099511628211ull;
    h = (h ^ uint64_t(v)) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return float(h % 8000) / 1000.0f - 4.0f;
  }

  // The logits after `history`.
  void fill_logits(const std::vector<int32_t>& history, float* row) const {
    for (int64_t v = 0; v < config_.vocab_size; ++v) row[v] = logit_of(history, v);
    row[config_.eos_token_id] += eos_bias;
    for (size_t v = 0; v < bias.size() && v < size_t(config_.vocab_size); ++v) row[v] += bias[v];
  }

  Status step(std::span<runtime::Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
              std::span<const runtime::Feed> feeds, float* logits) override {
    if (step_delay.count() > 0) std::this_thread::sleep_for(step_delay);
    for (size_t i = 0; i < feeds.size(); ++i)
      if (feeds[i] == runtime::Feed::verify) {
        if (verify_delay.count() > 0) std::this_thread::sleep_for(verify_delay);
        if (verify_delay_per_draft.count() > 0) std::this_thread::sleep_for(verify_delay_per_draft * (tokens[i].size() - 1));
      }
    for (size_t i = 0; i < seqs.size(); ++i) {
      auto* s = static_cast<FakeSequence*>(seqs[i]);
      for (int32_t t : tokens[i])
        if (t < 0 || t >= config_.vocab_size || t == poison_token) return Status::invalid_argument("bad token");
      if (s->position() + int64_t(tokens[i].size()) > max_context_) return Status::out_of_range("context overflow");
      if (s->open_chunk > 0) return Status::invalid_argument("verify chunk not committed");
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      batch_sizes.push_back(int(seqs.size()));
      int64_t fed = 0;
      for (auto& t : tokens) fed += int64_t(t.size());
      tokens_per_step.push_back(fed);
    }
    float* row = logits;
    for (size_t i = 0; i < seqs.size(); ++i) {
      auto* s = static_cast<FakeSequence*>(seqs[i]);
      const bool verify = !feeds.empty() && feeds[i] == runtime::Feed::verify;
      for (int32_t t : tokens[i]) {
        s->tokens.push_back(t);
        if (verify) {
          fill_logits(s->tokens, row);
          row += config_.vocab_size;
        }
      }
      if (verify) {
        s->open_chunk = int64_t(tokens[i].size());
      } else {
        fill_logits(s->tokens, row);
        row += config_.vocab_size;
      }
    }
    return Status::ok_status();
  }

  // A drafter, when max_drafts > 0. Slot i's logits come from draft_logits (history = the
  // sequence's tokens, the anchor, the drafts so far); by default the target's own logits there
  // (a drafter the target always agrees with).
  int max_draft_tokens() const override { return max_drafts; }
  Result<int> draft(runtime::Sequence& seq, int32_t anchor, const runtime::DraftOptions& options,
                    runtime::DraftChooser& chooser, int32_t* out, float* logits) override {
    auto& s = static_cast<FakeSequence&>(seq);
    if (max_drafts <= 0) return Status::unsupported("no drafter");
    if (s.open_chunk > 0) return Status::invalid_argument("verify chunk not committed");
    std::vector<int32_t> history = s.tokens;
    history.push_back(anchor);
    const int n = std::min(options.max_tokens, max_drafts);
    for (int i = 0; i < n; ++i) {
      float* z = logits + i * config_.vocab_size;
      if (draft_logits) {
        draft_logits(history, i, z);
      } else {
        fill_logits(history, z);
      }
      out[i] = chooser.choose(i, std::span<const float>(z, size_t(config_.vocab_size)));
      history.push_back(out[i]);
    }
    drafts_made.fetch_add(n);
    return n;
  }
  Status commit(runtime::Sequence& seq, int64_t keep) override {
    auto& s = static_cast<FakeSequence&>(seq);
    if (s.open_chunk == 0 || keep < 1 || keep > s.open_chunk) return Status::invalid_argument("bad commit");
    s.tokens.resize(s.tokens.size() - size_t(s.open_chunk - keep));
    s.open_chunk = 0;
    return Status::ok_status();
  }

  mutable std::atomic<int64_t> last_reserve{-1};
  std::mutex mu;
  std::vector<int> batch_sizes;
  std::vector<int64_t> tokens_per_step;
  std::chrono::milliseconds step_delay{0};
  std::chrono::milliseconds verify_delay{0};   // added to a step with a verify chunk
  std::chrono::microseconds verify_delay_per_draft{0};   // and this per draft it carries
  float eos_bias = -100.0f;
  std::vector<float> bias;  // added to every logits row (e.g. to keep outputs printable)
  int32_t poison_token = -1;
  int max_drafts = 0;
  std::function<void(const std::vector<int32_t>& history, int slot, float* z)> draft_logits;
  std::atomic<int> drafts_made{0};
  mutable std::atomic<int> live_sequences{0};

 private:
  io::ModelConfig config_;
  int64_t max_context_;
};

}  // namespace dsv4::test

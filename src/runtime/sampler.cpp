#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace dsv4::runtime {

Status validate_sampling(const SamplingParams& p) {
  auto bad = [](const std::string& m) { return Status::invalid_argument(m); };
  if (!std::isfinite(p.temperature) || p.temperature < 0 || p.temperature > 2)
    return bad("'temperature' must be between 0 and 2");
  if (p.top_k < 0) return bad("'top_k' must be >= 0 (0 disables it)");
  if (!std::isfinite(p.top_p) || p.top_p <= 0 || p.top_p > 1) return bad("'top_p' must be in (0, 1]");
  if (!std::isfinite(p.min_p) || p.min_p < 0 || p.min_p > 1) return bad("'min_p' must be in [0, 1]");
  if (!std::isfinite(p.presence_penalty) || p.presence_penalty < -2 || p.presence_penalty > 2)
    return bad("'presence_penalty' must be between -2 and 2");
  if (!std::isfinite(p.frequency_penalty) || p.frequency_penalty < -2 || p.frequency_penalty > 2)
    return bad("'frequency_penalty' must be between -2 and 2");
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0 || p.repetition_penalty > 10)
    return bad("'repetition_penalty' must be in (0, 10]");
  if (p.top_logprobs < -1 || p.top_logprobs > kMaxTopLogprobs)
    return bad("'top_logprobs' must be between 0 and " + std::to_string(kMaxTopLogprobs));
  if (p.logit_bias.size() > kMaxLogitBiasTokens)
    return bad("'logit_bias' may list at most " + std::to_string(kMaxLogitBiasTokens) + " tokens");
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0) return bad("'logit_bias' keys must be token ids (>= 0)");
    if (!std::isfinite(bias) || bias < -100 || bias > 100) return bad("'logit_bias' values must be between -100 and 100");
  }
  return Status::ok_status();
}

Sampler::Sampler(const SamplingParams& params, std::span<const int32_t> prompt)
    : params_(params) {
  // seen_ holds each token once, so the repetition penalty applies once per distinct token.
  seen_.insert(prompt.begin(), prompt.end());
  // The second generator has its own seed, so that a seeded request draws the same stream from
  // the first one with or without speculation.
  if (params.seed) {
    rng_.seed(*params.seed);
    spec_rng_.seed(*params.seed ^ 0x9e3779b97f4a7c15ull);
  } else {
    std::random_device rd;
    rng_.seed((uint64_t(rd()) << 32) ^ rd());
    spec_rng_.seed((uint64_t(rd()) << 32) ^ rd());
  }
}

void Sampler::apply_penalties(std::span<float> logits) const {
  const int64_t n = int64_t(logits.size());
  for (const auto& [t, bias] : params_.logit_bias)
    if (t < n) logits[size_t(t)] += bias;
  if (params_.repetition_penalty != 1.0f) {
    const float r = params_.repetition_penalty;
    for (int32_t t : seen_) {
      if (t < 0 || t >= n) continue;
      float& l = logits[size_t(t)];
      l = l > 0 ? l / r : l * r;
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    for (const auto& [t, count] : generated_counts_) {
      if (t < 0 || t >= n) continue;
      logits[size_t(t)] -= params_.presence_penalty + params_.frequency_penalty * float(count);
    }
  }
}

Status check_logits_finite(std::span<const float> logits) {
  // One pass with no early exit (vectorisable); the slow search runs only on failure.
  bool finite = true;
  for (float l : logits) finite &= std::isfinite(l);
  if (finite) return Status::ok_status();
  size_t i = 0;
  while (std::isfinite(logits[i])) ++i;
  return Status::corrupt_data("the model produced a non-finite logit (" + std::to_string(logits[i]) + " for token " +
                              std::to_string(i) +
                              "): its weights hold NaN/Inf values or a computation overflowed; the request stops "
                              "rather than sample from it");
}

void compute_logprobs(std::span<const float> logits, int32_t token, int n, SampledToken& out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (float l : logits) mx = std::max(mx, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l) - mx);
  const float lse = float(mx + std::log(sum));
  out.logprob = logits[size_t(token)] - lse;
  out.top.clear();
  if (n <= 0) return;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
  const size_t k = std::min(size_t(n), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  for (size_t i = 0; i < k; ++i) out.top.push_back({ids[i], logits[size_t(ids[i])] - lse});
}

double Sampler::warp(std::span<const float> logits) {
  const float inv_t = 1.0f / params_.temperature;
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isinf(logits[i]) && logits[i] < 0) continue;  // masked out
    candidates_.push_back({logits[i] * inv_t, int32_t(i)});
  }
  if (candidates_.empty()) return 0;
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  // Only top-k and top-p need an order; with neither (DeepSeek's defaults) the draw runs over
  // the vocabulary in id order, with no sort of a 129k-entry vocabulary per token.
  bool sorted = false;
  if (params_.top_k > 0 && size_t(params_.top_k) < candidates_.size()) {
    const size_t keep = size_t(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), better);
    candidates_.resize(keep);
    sorted = true;
  }
  // Softmax over the survivors, in place: first = probability.
  float mx = candidates_[0].first;
  for (const auto& c : candidates_) mx = std::max(mx, c.first);
  double sum = 0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - mx);
    sum += c.first;
  }
  float p_max = 0;
  for (auto& c : candidates_) {
    c.first = float(c.first / sum);
    p_max = std::max(p_max, c.first);
  }
  // min-p and top-p both keep a most-likely prefix of the same probabilities, so their order
  // does not matter.
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * p_max;
    std::erase_if(candidates_, [&](const std::pair<float, int32_t>& c) { return c.first < floor; });
  }
  if (params_.top_p < 1.0f) {
    if (!sorted) std::sort(candidates_.begin(), candidates_.end(), better);
    double mass = 0;
    size_t i = 0;
    for (; i < candidates_.size(); ++i) {
      mass += candidates_[i].first;
      if (mass >= params_.top_p) break;
    }
    candidates_.resize(std::min(candidates_.size(), i + 1));
  }
  double total = 0;
  for (const auto& c : candidates_) total += c.first;
  return total;
}

int32_t Sampler::pick(double total, std::mt19937_64& rng) const {
  if (candidates_.empty()) return 0;
  // 53 random bits -> uniform double in [0, 1); independent of the standard library's
  // distribution implementations, so a seed gives the same draw everywhere.
  const double u = double(rng() >> 11) * (1.0 / 9007199254740992.0) * total;
  double acc = 0;
  for (const auto& c : candidates_) {
    acc += c.first;
    if (u < acc) return c.second;
  }
  return candidates_.back().second;
}

int32_t Sampler::draw(std::span<const float> logits) {
  const double total = warp(logits);
  return pick(total, rng_);
}

int32_t Sampler::argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[size_t(best)]) best = int32_t(i);
  return best;
}

SampledToken Sampler::sample(std::span<float> logits) {
  DSV4_CHECK(!logits.empty());
  SampledToken out;
  std::vector<float> raw;
  if (params_.top_logprobs >= 0) raw.assign(logits.begin(), logits.end());
  apply_penalties(logits);
  if (params_.greedy()) {
    out.token = argmax(logits);
  } else {
    out.token = draw(logits);
  }
  if (params_.top_logprobs >= 0) compute_logprobs(raw, out.token, params_.top_logprobs, out);
  accept(out.token);
  return out;
}

int32_t Sampler::draft(std::span<const float> z, std::span<float> q) {
  if (params_.greedy()) return argmax(z);
  const double total = warp(z);
  std::fill(q.begin(), q.end(), 0.0f);
  for (const auto& c : candidates_) q[size_t(c.second)] = float(c.first / total);
  return pick(total, spec_rng_);
}

SampledToken Sampler::verify(std::span<float> logits, int32_t d, std::span<const float> q, bool* accepted) {
  if (params_.greedy()) {
    SampledToken out = sample(logits);
    *accepted = out.token == d;
    return out;
  }
  DSV4_CHECK(!logits.empty() && q.size() == logits.size());
  SampledToken out;
  std::vector<float> raw;
  if (params_.top_logprobs >= 0) raw.assign(logits.begin(), logits.end());
  apply_penalties(logits);
  const double total = warp(logits);
  // p(d): the target's probability of the draft after the same warping as sample() (§A5.2 (ii)).
  double p_d = 0;
  for (const auto& c : candidates_)
    if (c.second == d) p_d = c.first / total;
  const double q_d = std::max(double(q[size_t(d)]), 1e-8);
  const double u = double(spec_rng_() >> 11) * (1.0 / 9007199254740992.0);
  *accepted = u < std::min(1.0, p_d / q_d);
  if (*accepted) {
    out.token = d;
  } else {
    // Residual max(0, p - q), renormalised; p itself when nothing is left (§A5.2 step 5).
    double residual = 0;
    for (auto& c : candidates_) {
      c.first = float(std::max(0.0, c.first / total - double(q[size_t(c.second)])));
      residual += c.first;
    }
    if (residual > 1e-8) {
      out.token = pick(residual, rng_);
    } else {
      out.token = draw(logits);
    }
  }
  if (params_.top_logprobs >= 0) compute_logprobs(raw, out.token, params_.top_logprobs, out);
  accept(out.token);
  return out;
}

void Sampler::accept(int32_t token) {
  generated_counts_[token] += 1;
  seen_.insert(token);
}

}  // namespace dsv4::runtime

// Token sampling from one row of logits: penalties, temperature, top-k / top-p / min-p
// truncation, a seeded draw, and the log-probabilities reported to clients.
//
// Order of operations (the same for every request, so a seed reproduces its output):
//   0. logit bias: each listed token's logit += its bias (OpenAI's logit_bias; -100 in effect
//      bans a token, +100 all but forces it);
//   1. repetition penalty over prompt + generated tokens (CTRL-style: positive logits / r,
//      negative logits * r), then presence and frequency penalties over generated tokens
//      (OpenAI semantics: logit -= presence * [count > 0] + frequency * count);
//   2. temperature 0 (or top_k 1) is greedy: the arg-max, lowest id on ties;
//   3. otherwise logits / temperature, softmax, keep top-k, then the smallest prefix whose mass
//      reaches top_p, then drop tokens whose probability is below min_p * p_max; renormalise and
//      draw with the request's own generator.
// Reported log-probabilities are those of the model's distribution (log-softmax of the raw
// logits, before penalties and temperature), like the OpenAI API.
//
// Speculative decoding (addendum §A5.2) goes through the same steps: draft() draws a draft token
// from the drafter's logits warped by step 3 (no penalties: the draft distribution q may be any
// distribution, as long as the token is drawn from it), and verify() accepts it with probability
// min(1, p(d) / q(d)), where p is exactly the distribution sample() would draw from, or else
// draws from the residual max(0, p - q). So a token is distributed as sample()'s would be, and a
// greedy request gets the arg-max, exactly as sample() gives it. Drafts and acceptance uniforms
// come from a second generator, so they never shift the first one's stream of draws.
//
// Thread-safety: a Sampler belongs to one request and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/status.h"

namespace dsv4::runtime {

// DeepSeek's generation_config.json ships do_sample with temperature 1.0 and top_p 1.0; those
// are the defaults when a request leaves them out.
struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  int top_k = 0;                   // 0 = off
  float top_p = 1.0f;              // 1 = off
  float min_p = 0.0f;              // 0 = off
  float presence_penalty = 0.0f;   // [-2, 2]
  float frequency_penalty = 0.0f;  // [-2, 2]
  float repetition_penalty = 1.0f; // 1 = off, > 0
  std::optional<uint64_t> seed;    // absent = nondeterministic
  int top_logprobs = -1;           // -1 = no log-probabilities; 0..kMaxTopLogprobs alternatives
  std::vector<std::pair<int32_t, float>> logit_bias;   // (token, bias in [-100, 100]), step 0

  bool greedy() const { return temperature == 0.0f || top_k == 1; }
};

// OpenAI caps top_logprobs at 20.
inline constexpr int kMaxTopLogprobs = 20;
// Tokens one logit_bias may list (OpenAI documents no limit; 1024 bounds the per-token work).
inline constexpr size_t kMaxLogitBiasTokens = 1024;

// Checks ranges; the message names the offending field as the API spells it. Token ids are
// checked against the vocabulary by the scheduler, which knows it.
Status validate_sampling(const SamplingParams& p);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0;                 // of `token` under the model's distribution (if requested)
  std::vector<TokenLogprob> top;     // the top_logprobs most likely tokens, best first
};

class Sampler {
 public:
  // REQUIRES: validate_sampling(params).ok(). `prompt` seeds the repetition-penalty set.
  Sampler(const SamplingParams& params, std::span<const int32_t> prompt);

  // Picks the next token from `logits` (vocab entries; modified in place as scratch) and
  // records it in the penalty history.
  SampledToken sample(std::span<float> logits);
  // Records a token written into the output without sampling (a forced token) in the penalty
  // history, as if it had been sampled.
  void accept(int32_t token);

  // Speculative decoding. draft(): a draft token from drafter logits z; for a sampling request,
  // q (vocab entries) receives the distribution it was drawn from. verify(): the token at a
  // drafted position, from the target's logits there (modified in place, like sample()) and
  // the draft d with its q (unused when greedy); *accepted says whether it is d. Records the
  // token in the penalty history.
  int32_t draft(std::span<const float> z, std::span<float> q);
  SampledToken verify(std::span<float> logits, int32_t d, std::span<const float> q, bool* accepted);

  const SamplingParams& params() const { return params_; }

 private:
  // Steps 0 and 1: logit bias and penalties, in place.
  void apply_penalties(std::span<float> logits) const;
  // Step 3 up to the draw: candidates_ becomes the kept (probability, id) pairs; returns their
  // total probability (the renormalisation divisor).
  double warp(std::span<const float> logits);
  int32_t pick(double total, std::mt19937_64& rng) const;
  int32_t draw(std::span<const float> logits);
  static int32_t argmax(std::span<const float> logits);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::mt19937_64 spec_rng_;   // draft tokens and acceptance uniforms
  std::unordered_map<int32_t, int> generated_counts_;
  std::unordered_set<int32_t> seen_;  // distinct tokens of prompt + generated (repetition penalty)
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch
};

// OK when every logit is finite; otherwise corrupt_data naming the first bad one. A NaN or
// infinite logit means NaN/Inf weights or an overflow upstream: every comparison with NaN is
// false, so sampling such a row would return token 0 forever. The request must stop instead.
Status check_logits_finite(std::span<const float> logits);

// log-softmax of `logits` at `token`, and the `n` best (token, logprob) pairs (ties: lower id).
void compute_logprobs(std::span<const float> logits, int32_t token, int n, SampledToken& out);

}  // namespace dsv4::runtime

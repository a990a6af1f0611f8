// Shared by the scheduler tests: greedy requests, and reading a generation to its end.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "runtime/scheduler.h"

namespace dsv4::test {

struct Collected {
  std::vector<int32_t> tokens;
  runtime::GenerationEvent finished;
  int progress_events = 0;
};

// Reads a generation to its end (bounded: fails the test after ~40 s).
inline Collected collect(runtime::Generation& g) {
  Collected c;
  for (int i = 0; i < 4000; ++i) {
    auto e = g.next(std::chrono::milliseconds(10));
    if (!e) continue;
    if (e->kind == runtime::GenerationEvent::Kind::token) c.tokens.push_back(e->sampled.token);
    if (e->kind == runtime::GenerationEvent::Kind::prefill_progress) c.progress_events++;
    if (e->kind == runtime::GenerationEvent::Kind::finished) {
      c.finished = *e;
      return c;
    }
  }
  ADD_FAILURE() << "generation did not finish";
  return c;
}

inline runtime::GenerationRequest greedy_request(std::vector<int32_t> prompt, int64_t max_tokens) {
  runtime::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  return r;
}

}  // namespace dsv4::test

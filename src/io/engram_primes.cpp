#include "io/engram_primes.h"

#include <set>

#include "core/status.h"

namespace dsv4::io {

namespace {

bool is_prime(int64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (int64_t d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

}  // namespace

std::vector<std::vector<int64_t>> engram_primes(const V41EngramConfig& e) {
  DSV4_CHECK(e.vocab_size >= 1 && e.columns() >= 1);
  std::set<int64_t> used;
  std::vector<std::vector<int64_t>> primes(e.layer_ids.size());
  for (auto& layer : primes) {
    for (int64_t n = 2; n <= e.max_ngram_size; ++n) {
      int64_t running = e.vocab_size - 1;
      for (int64_t h = 0; h < e.n_heads; ++h) {
        do ++running;
        while (!is_prime(running) || used.count(running));
        used.insert(running);
        layer.push_back(running);
      }
    }
  }
  return primes;
}

}  // namespace dsv4::io

// Deterministic pseudo-random numbers for synthetic weights and tests. Written out here (not
// std::mt19937 + std::normal_distribution) because the standard distributions may produce
// different sequences across library versions, and a seed must always give the same checkpoint.
#pragma once

#include <cstdint>
#include <string_view>

namespace dsv4 {

// splitmix64 step: a bijective mixer, used to derive independent seeds from (seed, index) pairs.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Seed of a named sub-stream (FNV-1a over the name, then mixed with the seed).
inline uint64_t derive_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return splitmix64(seed ^ splitmix64(h));
}
inline uint64_t derive_seed(uint64_t seed, uint64_t index) { return splitmix64(seed ^ splitmix64(index + 1)); }

// xoshiro256** (Blackman & Vigna): fast, 256-bit state, good statistical quality.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) s = seed = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n) (n > 0); the modulo bias is < n / 2^64, irrelevant here.
  uint64_t below(uint64_t n) { return next() % n; }
  // Approximately N(0, 1): Irwin-Hall sum of four 16-bit uniforms, centred and scaled to unit
  // variance (var of a sum of 4 U(0,1) is 4/12). Range is bounded by ±2·sqrt(3) ≈ ±3.46, which
  // keeps FP8 codes far from the ±448 saturation. Integer arithmetic only: bit-reproducible.
  float normal() { return float(normal_sum()) * kNormalStep; }
  // The integer behind normal(): a value in [-kNormalSumMax, kNormalSumMax]; normal() is this
  // times kNormalStep (lets callers tabulate functions of a normal draw).
  int64_t normal_sum() {
    const uint64_t r = next();
    return int64_t(r & 0xffff) + int64_t((r >> 16) & 0xffff) + int64_t((r >> 32) & 0xffff) + int64_t(r >> 48) -
           kNormalSumMax;
  }
  static constexpr int64_t kNormalSumMax = 2 * 65535;
  static constexpr float kNormalStep = 1.7320508f / 65535.0f;   // sqrt(3) / 65535: unit variance

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace dsv4

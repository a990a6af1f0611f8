// The SIMD attention-side kernels against their scalar definitions, bit for bit, on every
// instruction set this CPU runs (sparse_attn.h).
#include "kernels/cpu/sparse_attn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/matmul.h"

namespace dsv4::kernels {
namespace {

// Runs f once per supported implementation, then restores the active one.
template <typename F>
void for_each_impl(F f) {
  const RestoreMatmulImpl restore;
  for (MatmulImpl impl : {MatmulImpl::generic, MatmulImpl::avx2, MatmulImpl::avx512}) {
    if (!select_matmul_impl(impl)) continue;
    SCOPED_TRACE(matmul_impl_name(impl));
    f();
  }
}

std::vector<uint16_t> bf16_normal(size_t n, float sd, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(d(rng));
  return v;
}

TEST(SparseAttention, RowsKernelMatchesReferenceBitwise) {
  std::mt19937 rng(7);
  const int64_t H = 9, dim = 512, n_window = 100, n = 300;   // H not a multiple of the head group
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(H * dim)), sinks(static_cast<size_t>(H));
  for (auto& v : q) v = round_bf16(nd(rng));
  for (auto& v : sinks) v = nd(rng);
  const auto kv16 = bf16_normal(size_t(n * dim), 2.0f, rng);
  std::vector<float> kv(kv16.size());
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = bf16_to_f32(kv16[i]);
  // Entries in a shuffled order of storage rows: the kernel follows the pointer list.
  std::vector<const uint16_t*> rows(static_cast<size_t>(n));
  std::vector<float> kv_listed(kv.size());
  for (int64_t a = 0; a < n; ++a) {
    const int64_t src = (a * 37) % n;
    rows[size_t(a)] = kv16.data() + src * dim;
    std::memcpy(&kv_listed[size_t(a * dim)], &kv[size_t(src * dim)], size_t(dim) * 4);
  }
  const float scale = 1.0f / std::sqrt(float(dim));
  std::vector<float> want(static_cast<size_t>(H * dim));
  attention_with_sink(q.data(), H, kv_listed.data(), n_window, n, dim, scale, sinks.data(), want.data());
  for_each_impl([&] {
    std::vector<float> got(size_t(H * dim), -1.0f);
    attention_rows_bf16(q.data(), rows.data(), n_window, n, dim, scale, sinks.data(), 0, 5, got.data());
    attention_rows_bf16(q.data(), rows.data(), n_window, n, dim, scale, sinks.data(), 5, H, got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
  });
}

TEST(SparseAttention, RowsKernelMatchesReferenceWithOnlyAWindow) {
  std::mt19937 rng(8);
  const int64_t H = 4, dim = 128, n = 1;
  std::vector<float> q(size_t(H * dim), 0.25f), sinks(size_t(H), -2.0f);
  const auto kv16 = bf16_normal(size_t(n * dim), 1.0f, rng);
  std::vector<float> kv(kv16.size());
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = bf16_to_f32(kv16[i]);
  const uint16_t* rows[1] = {kv16.data()};
  std::vector<float> want(static_cast<size_t>(H * dim));
  attention_with_sink(q.data(), H, kv.data(), 1, 1, dim, 0.5f, sinks.data(), want.data());
  for_each_impl([&] {
    std::vector<float> got(static_cast<size_t>(H * dim));
    attention_rows_bf16(q.data(), rows, 1, 1, dim, 0.5f, sinks.data(), 0, H, got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
  });
}

// Indexer queries are FP4-simulated and keys too (spec §5.6); random bf16 values exercise the
// same arithmetic, and a third of the per-head scores come out negative (ReLU).
void check_indexer(int64_t heads, int64_t dim, int64_t n, int64_t j0, int64_t j1) {
  SCOPED_TRACE(testing::Message() << heads << " heads x " << dim << ", entries [" << j0 << ", " << j1 << ")");
  std::mt19937 rng(uint32_t(heads * 1000 + dim));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(heads * dim)), w(static_cast<size_t>(heads));
  for (auto& v : q) v = round_bf16(nd(rng) + 0.2f);
  for (auto& v : w) v = round_bf16(nd(rng) * 0.1f);
  const auto keys = bf16_normal(size_t(n * dim), 1.0f, rng);
  std::vector<float> want(size_t(n), -7.0f);
  indexer_scores_ref(q.data(), w.data(), heads, dim, keys.data(), j0, j1, want.data());
  for_each_impl([&] {
    std::vector<float> got(size_t(n), -7.0f);
    indexer_scores(q.data(), w.data(), heads, dim, keys.data(), j0, j1, got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
  });
}

TEST(Indexer, ScoresMatchReferenceBitwise) {
  check_indexer(64, 128, 300, 0, 300);   // V4 shape
  check_indexer(64, 128, 300, 17, 250);  // a range, as one thread's share
  check_indexer(4, 64, 41, 0, 41);       // the tiny fixtures: 4 heads, padded to 16 lanes
  check_indexer(20, 32, 23, 3, 22);      // two head vectors, the second partly padded
  check_indexer(80, 16, 5, 0, 5);        // five head vectors: two passes
}

}  // namespace
}  // namespace dsv4::kernels

// matmul (all instruction-set variants) against an exact sum and against matmul_ref, the
// bit-identity of the variants, and the invariant of matmul.h (no dependence on n or threads).
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace dsv4::kernels {
namespace {

// A weight matrix in one stored format, built from random codes.
struct TestWeight {
  std::vector<uint8_t> data, scale;
  WeightView view;
};

// E8M0 exponents drawn from [e_lo, e_hi]; real checkpoints sit around 2^-10..2^0 (e 117..127).
// FP8 scales per block x block (128; V4.1: 32).
TestWeight make_weight(DType dt, int64_t rows, int64_t cols, std::mt19937& rng, int e_lo = 112,
                       int e_hi = 132, int64_t block = 128) {
  TestWeight tw;
  std::uniform_int_distribution<int> byte(0, 255), exp(e_lo, e_hi);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  switch (dt) {
    case DType::f32: {
      tw.data.resize(size_t(rows * cols) * 4);
      for (int64_t i = 0; i < rows * cols; ++i) {
        const float v = normal(rng);
        std::memcpy(&tw.data[size_t(i) * 4], &v, 4);
      }
      break;
    }
    case DType::bf16: {
      tw.data.resize(size_t(rows * cols) * 2);
      for (int64_t i = 0; i < rows * cols; ++i) {
        const uint16_t h = f32_to_bf16(normal(rng));
        std::memcpy(&tw.data[size_t(i) * 2], &h, 2);
      }
      break;
    }
    case DType::fp8_e4m3: {
      tw.data.resize(size_t(rows * cols));
      for (auto& b : tw.data) {
        do b = uint8_t(byte(rng));
        while ((b & 0x7f) == 0x7f);  // no NaN codes (checkpoints hold none)
      }
      tw.scale.resize(size_t(((rows + block - 1) / block) * ((cols + block - 1) / block)));
      for (auto& e : tw.scale) e = uint8_t(exp(rng));
      break;
    }
    case DType::fp4_e2m1: {
      tw.data.resize(size_t(rows * cols / 2));
      for (auto& b : tw.data) b = uint8_t(byte(rng));
      tw.scale.resize(size_t(rows * (cols / 32)));
      for (auto& e : tw.scale) e = uint8_t(exp(rng));
      break;
    }
    default: ADD_FAILURE() << "unsupported dtype";
  }
  tw.view = WeightView{dt, rows, cols, tw.data.data(), tw.scale.empty() ? nullptr : tw.scale.data()};
  tw.view.block = block;
  return tw;
}

std::vector<float> make_acts(int64_t n, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(n * cols));
  for (auto& v : x) v = normal(rng);
  return x;
}

// Restores the automatically chosen implementation and the thread count after each test.
class MatmulTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_threads_ = omp_get_max_threads(); }
  void TearDown() override { omp_set_num_threads(saved_threads_); }
  static std::vector<MatmulImpl> fast_impls() {
    std::vector<MatmulImpl> v;
    for (MatmulImpl i : {MatmulImpl::generic, MatmulImpl::avx2, MatmulImpl::avx512})
      if (matmul_impl_supported(i)) v.push_back(i);
    return v;
  }
  static std::vector<float> run(MatmulImpl impl, const WeightView& w, const float* x, int64_t n) {
    EXPECT_TRUE(select_matmul_impl(impl));
    std::vector<float> y(size_t(n * w.rows), -12345.0f);
    matmul(w, x, n, y.data());
    return y;
  }
  // Expects the AVX-512 kernel to give the generic kernel's bits on w x, and returns how many
  // dot-product tiles `tiles` (fp4_ or fp8_dot_tiles_on_this_thread) counted during it.
  static int64_t dot_tiles_of_bitwise_run(int64_t (*tiles)(), const WeightView& w, const std::vector<float>& x,
                                          int64_t n, const std::string& what) {
    const std::vector<float> base = run(MatmulImpl::generic, w, x.data(), n);
    const int64_t before = tiles();
    const std::vector<float> y = run(MatmulImpl::avx512, w, x.data(), n);
    const int64_t ran = tiles() - before;
    EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4)) << what;
    return ran;
  }
  // Runs the jobs through matmul_many with each thread count, `reps` times each, and checks
  // every y against the job's own single-threaded matmul(), bit for bit, for every fast
  // implementation.
  struct JobSpec {
    DType dt;
    int64_t rows, cols, n;
  };
  static void expect_many_equals_separate(const std::vector<JobSpec>& specs, uint32_t seed,
                                          std::initializer_list<int> thread_counts, int reps);
  const RestoreMatmulImpl restore_impl_;
  int saved_threads_ = 1;
};

// Forward error bound of a sum of m products each rounded into an f32 accumulation chain of length
// L: |computed - exact| <= gamma(L) * sum |w x|, gamma(L) = L u / (1 - L u), u = 2^-24 (Higham
// 3.1). The canonical order has chains of K/16 fused multiply-adds plus 4 tree levels; matmul_ref
// rounds each product and then adds sequentially (K + 1). A single wrong weight in a row of K
// moves the sum by about (1/K) sum|w x|, far above gamma(K/16 + 4) for every K tested here.
double gamma_bound(int64_t len) {
  const double u = std::ldexp(1.0, -24);
  return double(len) * u / (1.0 - double(len) * u);
}

struct ExactRow {
  double sum = 0, abs_sum = 0;
};
// Exact (double) y[t][r] and sum |w x| from the exact dequantisation of dequant_row.
std::vector<ExactRow> exact_products(const WeightView& w, const float* x, int64_t n) {
  std::vector<ExactRow> out(size_t(n * w.rows));
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequant_row(w, r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      ExactRow e;
      for (int64_t k = 0; k < w.cols; ++k) {
        const double p = double(row[size_t(k)]) * double(x[t * w.cols + k]);
        e.sum += p;
        e.abs_sum += std::fabs(p);
      }
      out[size_t(t * w.rows + r)] = e;
    }
  }
  return out;
}

void expect_within_bound(const std::vector<float>& y, const std::vector<ExactRow>& exact,
                         double gamma, double abs_slack, const std::string& what) {
  ASSERT_EQ(y.size(), exact.size());
  int bad = 0;
  for (size_t i = 0; i < y.size() && bad < 5; ++i) {
    const double err = std::fabs(double(y[i]) - exact[i].sum);
    const double tol = gamma * exact[i].abs_sum + abs_slack;
    if (!(err <= tol)) {
      ADD_FAILURE() << what << " element " << i << ": got " << y[i] << " exact " << exact[i].sum
                    << " |err| " << err << " > tol " << tol;
      ++bad;
    }
  }
}

struct Shape {
  int64_t rows, cols;
};

const DType kAllDtypes[] = {DType::f32, DType::bf16, DType::fp8_e4m3, DType::fp4_e2m1};

TEST_F(MatmulTest, EveryImplMatchesExactSumWithinSummationBound) {
  std::mt19937 rng(1234);
  const Shape shapes[] = {{37, 256}, {130, 384}, {5, 128}, {261, 512}, {1, 1024}};
  const int64_t ns[] = {1, 3, 5, 8, 13, 50};
  for (DType dt : kAllDtypes)
    for (const Shape& s : shapes) {
      const TestWeight tw = make_weight(dt, s.rows, s.cols, rng);
      for (int64_t n : ns) {
        const std::vector<float> x = make_acts(n, s.cols, rng);
        const auto exact = exact_products(tw.view, x.data(), n);
        const std::string tag = std::string(dtype_name(dt)) + " [" + std::to_string(s.rows) + "," +
                                std::to_string(s.cols) + "] n=" + std::to_string(n);
        for (MatmulImpl impl : fast_impls())
          expect_within_bound(run(impl, tw.view, x.data(), n), exact, gamma_bound(s.cols / 16 + 4),
                              0.0, tag + " " + matmul_impl_name(impl));
        std::vector<float> yref(size_t(n * s.rows));
        matmul_ref(tw.view, x.data(), n, yref.data());
        expect_within_bound(yref, exact, gamma_bound(s.cols + 1), 0.0, tag + " matmul_ref");
      }
    }
}

TEST_F(MatmulTest, ShapesOutsideTheSimdPathsFallBackCorrectly) {
  // f32/bf16 with cols % 16 != 0 run the generic path under every implementation.
  std::mt19937 rng(77);
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t cols : {1, 7, 100}) {
      const TestWeight tw = make_weight(dt, 19, cols, rng);
      const std::vector<float> x = make_acts(9, cols, rng);
      const auto exact = exact_products(tw.view, x.data(), 9);
      for (MatmulImpl impl : fast_impls())
        expect_within_bound(run(impl, tw.view, x.data(), 9), exact, gamma_bound(cols / 16 + 5), 0.0,
                            std::string(dtype_name(dt)) + " cols=" + std::to_string(cols));
    }
}

TEST_F(MatmulTest, ImplsAreBitIdentical) {
  std::mt19937 rng(99);
  const Shape shapes[] = {{133, 384}, {64, 1024}, {7, 32 * 5 + 128}, {21, 1024 + 32}};
  for (DType dt : kAllDtypes)
    for (const Shape& s : shapes) {
      if (dt != DType::fp4_e2m1 && dt != DType::fp8_e4m3 && s.cols % 16) continue;
      const TestWeight tw = make_weight(dt, s.rows, s.cols, rng);
      for (int64_t n : {1, 2, 4, 6, 9, 49}) {
        const std::vector<float> x = make_acts(n, s.cols, rng);
        const std::vector<float> base = run(MatmulImpl::generic, tw.view, x.data(), n);
        for (MatmulImpl impl : fast_impls()) {
          const std::vector<float> y = run(impl, tw.view, x.data(), n);
          EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4))
              << dtype_name(dt) << " [" << s.rows << "," << s.cols << "] n=" << n << " "
              << matmul_impl_name(impl) << " differs from generic";
        }
      }
    }
}

// V4.1's FP8 weights (v4.1 §3.2: 32x32 scale blocks): every implementation gives the generic
// path's bits (matvec and GEMM, partial row and column blocks), within the bound of the exact sum.
TEST_F(MatmulTest, Fp8WithSmallScaleBlocksIsBitIdenticalAndExact) {
  std::mt19937 rng(3232);
  const Shape shapes[] = {{133, 384}, {64, 1024}, {7, 32 * 5}, {45, 96}};
  for (const Shape& s : shapes) {
    const TestWeight tw = make_weight(DType::fp8_e4m3, s.rows, s.cols, rng, 112, 132, 32);
    // W[o][i] = e4m3(Wq[o][i]) · 2^(S[o/32][i/32] - 127) (v4.1 §3.2).
    std::vector<float> row(size_t(s.cols));
    const int64_t r = s.rows - 1, scale_cols = (s.cols + 31) / 32;
    dequant_row(tw.view, r, row.data());
    for (int64_t k = 0; k < s.cols; k += 17)
      EXPECT_EQ(row[size_t(k)], e4m3_to_f32(tw.data[size_t(r * s.cols + k)]) *
                                    std::ldexp(1.0f, int(tw.scale[size_t((r / 32) * scale_cols + k / 32)]) - 127));
    for (int64_t n : {1, 2, 4, 6, 9, 49}) {
      const std::vector<float> x = make_acts(n, s.cols, rng);
      const std::string tag = "[" + std::to_string(s.rows) + "," + std::to_string(s.cols) + "] n=" + std::to_string(n);
      const std::vector<float> base = run(MatmulImpl::generic, tw.view, x.data(), n);
      expect_within_bound(base, exact_products(tw.view, x.data(), n), gamma_bound(s.cols / 16 + 4), 0.0, tag);
      std::vector<float> yref(size_t(n * s.rows));
      matmul_ref(tw.view, x.data(), n, yref.data());
      expect_within_bound(yref, exact_products(tw.view, x.data(), n), gamma_bound(s.cols + 1), 0.0, tag + " ref");
      for (MatmulImpl impl : fast_impls()) {
        const std::vector<float> y = run(impl, tw.view, x.data(), n);
        EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4)) << tag << " " << matmul_impl_name(impl);
      }
    }
  }
}

// matmul.h invariant: y[t][r] does not depend on n, on how tokens are chunked or on threads.
TEST_F(MatmulTest, RowResultIndependentOfBatchSizeChunkingAndThreads) {
  std::mt19937 rng(2024);
  const int64_t R = 300, K = 512, N = 37;
  for (DType dt : kAllDtypes) {
    const TestWeight tw = make_weight(dt, R, K, rng);
    const std::vector<float> x = make_acts(N, K, rng);
    for (MatmulImpl impl : fast_impls()) {
      ASSERT_TRUE(select_matmul_impl(impl));
      omp_set_num_threads(2);
      std::vector<float> full(size_t(N * R));
      matmul(tw.view, x.data(), N, full.data());
      // Token by token, on 1 and 2 threads.
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        for (int64_t t = 0; t < N; ++t) {
          std::vector<float> one(static_cast<size_t>(R));
          matmul(tw.view, x.data() + t * K, 1, one.data());
          ASSERT_EQ(0, std::memcmp(one.data(), full.data() + t * R, size_t(R) * 4))
              << dtype_name(dt) << " " << matmul_impl_name(impl) << " token " << t << " threads "
              << threads;
        }
      }
      // Chunks of 20 + 17 (GEMM + GEMM), 5 / 6 / 7 + the rest (matvec over two token groups,
      // each weight tile read once for both, + GEMM) on 1 thread.
      omp_set_num_threads(1);
      for (int64_t split : {20, 5, 6, 7}) {
        std::vector<float> chunked(size_t(N * R));
        matmul(tw.view, x.data(), split, chunked.data());
        matmul(tw.view, x.data() + split * K, N - split, chunked.data() + split * R);
        EXPECT_EQ(0, std::memcmp(chunked.data(), full.data(), chunked.size() * 4))
            << dtype_name(dt) << " " << matmul_impl_name(impl) << " split " << split;
      }
    }
  }
}

// Block scales at the ends of the E8M0 range, including e = 0 (2^-127) and e > 246 where the
// matvec cannot fold the scale into the activations; tiny activations push the folded products
// below the normal range. The fast paths must still equal the exact dequantise-then-FMA order.
TEST_F(MatmulTest, Fp8ExtremeScalesKeepExactDequantisation) {
  std::mt19937 rng(5);
  const int64_t R = 256, K = 512;
  TestWeight tw = make_weight(DType::fp8_e4m3, R, K, rng);
  for (auto& b : tw.data) b &= 0xbf;  // exponent field <= 7: |w| < 2, so 2^120 * w stays finite
  const uint8_t extremes[] = {0, 1, 60, 127, 200, 247, 250, 127};
  for (size_t i = 0; i < tw.scale.size(); ++i) tw.scale[i] = extremes[i % 8];
  std::vector<float> x = make_acts(3, K, rng);
  for (size_t i = 0; i < x.size(); i += 5) x[i] *= 0x1p-100f;
  const std::vector<float> base = run(MatmulImpl::generic, tw.view, x.data(), 3);
  for (int64_t n : {1, 3}) {
    for (MatmulImpl impl : fast_impls()) {
      const std::vector<float> y = run(impl, tw.view, x.data(), n);
      EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4)) << matmul_impl_name(impl);
    }
  }
  // And the generic order itself is within the bound (plus one subnormal ulp per operation).
  const auto exact = exact_products(tw.view, x.data(), 3);
  expect_within_bound(base, exact, gamma_bound(K / 16 + 4), double(K) * std::ldexp(1.0, -149),
                      "generic");
}

// The matvec folds 2^8 * s into the activations (matmul_simd.inl fp8_prescale); at s = 2^-1
// (e = 126) activations of 2^121 and more overflow that fold, so those 128-row blocks must take
// the dequantising path and still give the canonical bits. Subnormal E4M3 codes included.
TEST_F(MatmulTest, Fp8LargeActivationsFallBackExactly) {
  std::mt19937 rng(6);
  const int64_t R = 384, K = 256;
  TestWeight tw = make_weight(DType::fp8_e4m3, R, K, rng, 117, 127);
  for (size_t i = 0; i < tw.data.size(); i += 7) tw.data[i] &= 0x87;   // subnormal codes
  tw.scale[0] = 126;
  std::vector<float> x = make_acts(2, K, rng);
  x[3] = 3.0e36f;           // overflows the fold of the blocks with e = 126
  x[K + 9] = -1.5e36f;
  const std::vector<float> base = run(MatmulImpl::generic, tw.view, x.data(), 2);
  for (int64_t n : {1, 2}) {
    for (MatmulImpl impl : fast_impls()) {
      const std::vector<float> y = run(impl, tw.view, x.data(), n);
      EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4)) << matmul_impl_name(impl) << " n=" << n;
    }
  }
}

TEST_F(MatmulTest, ReferenceImplIsSelectable) {
  std::mt19937 rng(8);
  const TestWeight tw = make_weight(DType::fp4_e2m1, 70, 256, rng);
  const std::vector<float> x = make_acts(4, 256, rng);
  const std::vector<float> y = run(MatmulImpl::reference, tw.view, x.data(), 4);
  std::vector<float> yref(y.size());
  matmul_ref(tw.view, x.data(), 4, yref.data());
  EXPECT_EQ(0, std::memcmp(y.data(), yref.data(), y.size() * 4));
  EXPECT_EQ(active_matmul_impl(), MatmulImpl::reference);
}

}  // namespace
}  // namespace dsv4::kernels

namespace dsv4::kernels {
namespace {

void MatmulTest::expect_many_equals_separate(const std::vector<JobSpec>& specs, uint32_t seed,
                                             std::initializer_list<int> thread_counts, int reps) {
  std::mt19937 rng(seed);
  std::vector<TestWeight> ws;
  std::vector<std::vector<float>> xs;
  for (const JobSpec& s : specs) {
    ws.push_back(make_weight(s.dt, s.rows, s.cols, rng));
    xs.push_back(make_acts(s.n, s.cols, rng));
  }
  for (MatmulImpl impl : fast_impls()) {
    ASSERT_TRUE(select_matmul_impl(impl));
    std::vector<std::vector<float>> expect;
    omp_set_num_threads(1);
    for (size_t i = 0; i < ws.size(); ++i) {
      expect.emplace_back(size_t(specs[i].n * specs[i].rows), 0.0f);
      if (specs[i].n > 0) matmul(ws[i].view, xs[i].data(), specs[i].n, expect.back().data());
    }
    for (int threads : thread_counts)
      for (int rep = 0; rep < reps; ++rep) {
        omp_set_num_threads(threads);
        std::vector<std::vector<float>> got;
        std::vector<MatmulJob> jobs;
        for (size_t i = 0; i < ws.size(); ++i) got.emplace_back(size_t(specs[i].n * specs[i].rows), -7.0f);
        for (size_t i = 0; i < ws.size(); ++i)
          jobs.push_back(MatmulJob{ws[i].view, xs[i].data(), specs[i].n, got[i].data()});
        matmul_many(jobs.data(), int64_t(jobs.size()));
        for (size_t i = 0; i < ws.size(); ++i)
          EXPECT_TRUE(got[i].empty() || std::memcmp(got[i].data(), expect[i].data(), got[i].size() * 4) == 0)
              << "job " << i << " " << matmul_impl_name(impl) << " threads " << threads;
      }
  }
}

// Every y equals the job's own matmul() bit for bit, for any thread count, with empty and
// odd-sized jobs mixed in.
TEST_F(MatmulTest, ManyJobsEqualSeparateCallsBitwise) {
  expect_many_equals_separate({{DType::fp4_e2m1, 130, 512, 1}, {DType::fp4_e2m1, 64, 256, 1}, {DType::fp8_e4m3, 257, 384, 1},
                               {DType::bf16, 3, 128, 2}, {DType::fp4_e2m1, 50, 1024, 0}, {DType::f32, 0, 64, 3},
                               {DType::fp8_e4m3, 37, 256, 11}, {DType::f32, 21, 100, 9}},
                              31, {1, 2, 3}, 1);
}

// Large enough to run in parallel: matmul_many cuts the jobs into chunks of 128-row multiples
// (rows here are not multiples of 128), each thread runs its own share and then takes chunks
// from the end of the others'. With more threads than cores some are descheduled mid-share, so
// chunks change hands; every y must still equal the job's own single-threaded matmul().
TEST_F(MatmulTest, ChunkedSharesWithStealingEqualSeparateCallsBitwise) {
  expect_many_equals_separate({{DType::fp8_e4m3, 1000, 1024, 1}, {DType::fp4_e2m1, 700, 2048, 1}, {DType::bf16, 300, 1024, 2},
                               {DType::fp8_e4m3, 200, 256, 9}, {DType::fp4_e2m1, 129, 512, 1}, {DType::f32, 513, 256, 1}},
                              47, {2, 3, 5, 8}, 3);
}

// Both FP8 decodes of the SIMD matvec (integer ops, or through f16) give the generic order's bits:
// random codes include subnormals (exponent field 0, ~1 in 16) and the activations' magnitudes
// cover the normal prescale, the integer decode's 2^120 fold overflowing (|x| ~ 2^14 and beyond,
// which must fall back to the f16 decode) and both folds overflowing.
TEST_F(MatmulTest, Fp8DecodesAreBitIdentical) {
  std::mt19937 rng(31);
  const Fp8Decode saved = active_fp8_decode();
  const TestWeight tw = make_weight(DType::fp8_e4m3, 300, 512, rng, 112, 124);
  for (float magnitude : {1.0f, 0x1p15f, 0x1p120f})
    for (int64_t n : {1, 3, 4}) {
      std::vector<float> x = make_acts(n, 512, rng);
      for (float& v : x) v *= magnitude;
      const std::vector<float> base = run(MatmulImpl::generic, tw.view, x.data(), n);
      for (MatmulImpl impl : fast_impls())
        for (Fp8Decode d : {Fp8Decode::f16, Fp8Decode::integer}) {
          select_fp8_decode(d);
          const std::vector<float> y = run(impl, tw.view, x.data(), n);
          EXPECT_EQ(0, std::memcmp(y.data(), base.data(), y.size() * 4))
              << matmul_impl_name(impl) << " decode " << int(d) << " n " << n << " magnitude " << magnitude;
        }
    }
  select_fp8_decode(saved);
}

// SumOrder::two_slices, worked by hand: weights (x = 1) 2^24 at k = 0, 1 at k = 8, 2 at k = 9 and
// 1 at k = 16. acc0 (runs 0 and 2) = 2^24 + 1 -> 2^24 (tie to even); acc1 (run 1) = 3;
// y = 2^24 + 3 -> 2^24 + 4 (tie to even). The canonical 16-lane order gives 2^24 + 2 here.
TEST_F(MatmulTest, TwoSlicesOrderWorkedExample) {
  std::vector<uint16_t> w(32, 0);
  w[0] = f32_to_bf16(16777216.0f);
  w[8] = f32_to_bf16(1.0f);
  w[9] = f32_to_bf16(2.0f);
  w[16] = f32_to_bf16(1.0f);
  const WeightView view{DType::bf16, 1, 32, w.data(), nullptr};
  const std::vector<float> x(32, 1.0f);
  for (MatmulImpl impl : {MatmulImpl::reference, MatmulImpl::generic, MatmulImpl::avx2, MatmulImpl::avx512}) {
    if (!select_matmul_impl(impl)) continue;
    float y = 0.0f, canonical = 0.0f;
    const MatmulJob jobs[2] = {{view, x.data(), 1, &y, SumOrder::two_slices}, {view, x.data(), 1, &canonical}};
    matmul_many(jobs, 2);
    EXPECT_EQ(y, 16777220.0f) << matmul_impl_name(impl);
    if (impl != MatmulImpl::reference) {
      EXPECT_EQ(canonical, 16777218.0f) << matmul_impl_name(impl);
    }
  }
}

// The SIMD paths of SumOrder::two_slices (rows as lanes for n < 8, tokens as lanes above) equal the
// scalar oracle bit for bit, for any n, thread count and row split (including 16-row tails).
TEST_F(MatmulTest, TwoSlicesSimdEqualsScalarForAnyBatchAndThreads) {
  std::mt19937 rng(77);
  for (DType dt : {DType::bf16, DType::f32})
    for (int64_t rows : {16, 37, 256}) {
      const int64_t K = 96;
      const TestWeight tw = make_weight(dt, rows, K, rng);
      for (int64_t n : {1, 3, 7, 8, 21, 40}) {
        const std::vector<float> x = make_acts(n, K, rng);
        std::vector<float> expect(size_t(n * rows)), row(static_cast<size_t>(K));
        matmul_two_slices_rows(tw.view, x.data(), n, expect.data(), 0, rows, row.data());
        for (MatmulImpl impl : fast_impls())
          for (int threads : {1, 2, 3}) {
            ASSERT_TRUE(select_matmul_impl(impl));
            omp_set_num_threads(threads);
            std::vector<float> got(size_t(n * rows), -3.0f);
            const MatmulJob job{tw.view, x.data(), n, got.data(), SumOrder::two_slices};
            matmul_many(&job, 1);
            EXPECT_EQ(0, std::memcmp(got.data(), expect.data(), got.size() * 4))
                << dtype_name(dt) << " rows " << rows << " n " << n << " " << matmul_impl_name(impl) << " threads "
                << threads;
            if (n > 1) {   // token by token gives the same bits
              std::vector<float> one(static_cast<size_t>(rows));
              const MatmulJob last{tw.view, x.data() + (n - 1) * K, 1, one.data(), SumOrder::two_slices};
              matmul_many(&last, 1);
              EXPECT_EQ(0, std::memcmp(one.data(), expect.data() + (n - 1) * rows, one.size() * 4));
            }
          }
      }
    }
}

// MatmulJob::bf16_out rounds each y to bf16 and changes nothing else: the same bits as the plain
// product rounded afterwards, for every implementation, both sum orders, matvec and GEMM, with
// the rows cut into chunks across threads.
TEST_F(MatmulTest, Bf16OutputIsThePlainProductRounded) {
  std::mt19937 rng(5);
  for (DType dt : {DType::fp8_e4m3, DType::fp4_e2m1, DType::bf16, DType::f32}) {
    const TestWeight tw = make_weight(dt, 300, 256, rng);
    for (SumOrder order : {SumOrder::canonical, SumOrder::two_slices}) {
      if (order == SumOrder::two_slices && dt != DType::bf16 && dt != DType::f32) continue;
      for (int64_t n : {1, 9}) {
        const std::vector<float> x = make_acts(n, 256, rng);
        for (MatmulImpl impl : {MatmulImpl::reference, MatmulImpl::generic, MatmulImpl::avx2, MatmulImpl::avx512}) {
          if (!select_matmul_impl(impl)) continue;
          for (int threads : {1, 3}) {
            omp_set_num_threads(threads);
            std::vector<float> plain(size_t(n * 300)), rounded(size_t(n * 300));
            const MatmulJob jobs[2] = {{tw.view, x.data(), n, plain.data(), order},
                                       {tw.view, x.data(), n, rounded.data(), order, true}};
            matmul_many(jobs, 2);
            for (float& v : plain) v = round_bf16(v);
            EXPECT_EQ(0, std::memcmp(rounded.data(), plain.data(), plain.size() * 4))
                << dtype_name(dt) << " n " << n << " " << matmul_impl_name(impl) << " threads " << threads;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::kernels

namespace dsv4::kernels {
namespace {

// Fp4Dot::bf16 for a test's duration (the previous choice comes back after); ok() is false where
// the CPU has no AVX-512 or no AVX512-BF16 that gives the FMA chain's bits.
class Bf16DotSelected {
 public:
  Bf16DotSelected() : saved_(active_fp4_dot()) { select_fp4_dot(Fp4Dot::bf16); }
  ~Bf16DotSelected() { select_fp4_dot(saved_); }
  Bf16DotSelected(const Bf16DotSelected&) = delete;
  Bf16DotSelected& operator=(const Bf16DotSelected&) = delete;
  bool ok() const { return matmul_impl_supported(MatmulImpl::avx512) && active_fp4_dot() == Fp4Dot::bf16; }

 private:
  Fp4Dot saved_;
};

// Rounds every value to bf16 (nearest even): activations the BF16 dot product may take, as the
// FP8-quantised activations of spec §4.2 are.
std::vector<float> bf16_exact(std::vector<float> x) {
  for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));
  return x;
}

// The FP4 matvec on vdpbf16ps (Fp4Dot::bf16) gives the generic order's bits wherever it runs, and
// falls back to the FMA kernel wherever it may not: block scale codes outside [2, 252],
// activations that are not bf16 values, subnormal ones, or products so small that a partial sum
// could be subnormal (e + f < 136, simd_avx512.cpp). The tile counter shows which path ran: a
// tile is 4 rows x up to 4 tokens, for the matvec (n < 8) and the GEMM (n >= 8) alike.
TEST_F(MatmulTest, Fp4DotProductEqualsFmaOrderWhereItRuns) {
  const Bf16DotSelected dot;
  if (!dot.ok()) GTEST_SKIP() << "no AVX-512 with a usable AVX512-BF16 on this CPU";
  omp_set_num_threads(1);   // the tile counter is per thread
  std::mt19937 rng(41);
  struct Case {
    const char* what;
    int64_t rows, cols;
    int e_lo, e_hi;          // weight scale codes
    float x_scale;           // activations: bf16-rounded N(0,1) times this,
    bool unit;               // or +-[1, 2) times this (biased exponent fixed)
    bool exact_x;            // false: activations not rounded to bf16
    bool runs;               // the dot path takes every tile
  };
  const Case cases[] = {
      {"typical", 262, 512, 112, 132, 1.0f, false, true, true},
      {"16+ blocks and a tail", 64, 32 * 21, 117, 127, 1.0f, false, true, true},
      {"three blocks", 20, 96, 117, 127, 1.0f, false, true, true},
      {"activations not bf16", 64, 512, 117, 127, 1.0f, false, false, false},
      {"scale code 1", 64, 256, 1, 1, 1.0f, false, true, false},
      {"scale code 253", 64, 256, 253, 253, 1.0f, false, true, false},
      // |x| in [2^-60, 2^-59): f = 67; e >= 69 meets e + f >= 136 (69: exactly).
      {"tiny products, allowed", 64, 256, 69, 75, 0x1p-60f, true, true, true},
      // e <= 68: products down to 2^-128, partial sums can be subnormal.
      {"tiny products, refused", 64, 256, 60, 68, 0x1p-60f, true, true, false},
  };
  for (const Case& c : cases) {
    const TestWeight tw = make_weight(DType::fp4_e2m1, c.rows, c.cols, rng, c.e_lo, c.e_hi);
    for (int64_t n : {1, 3, 4, 9, 50}) {
      std::vector<float> x = make_acts(n, c.cols, rng);
      for (float& v : x) v = c.unit ? std::copysign(1.0f + std::fabs(v) / (1.0f + std::fabs(v)), v) * c.x_scale
                                    : v * c.x_scale;
      if (c.exact_x) x = bf16_exact(x);
      const std::string what = std::string(c.what) + " n=" + std::to_string(n);
      EXPECT_EQ(dot_tiles_of_bitwise_run(fp4_dot_tiles_on_this_thread, tw.view, x, n, what),
                c.runs ? (c.rows + 3) / 4 * ((n + 3) / 4) : 0) << what;
    }
  }
  // A subnormal, an infinity or a NaN among the activations sends the whole call to the FMA kernel.
  const TestWeight tw = make_weight(DType::fp4_e2m1, 16, 256, rng);
  for (float odd : {0x1p-140f, INFINITY, NAN}) {
    std::vector<float> x = bf16_exact(make_acts(1, 256, rng));
    x[77] = odd;
    EXPECT_EQ(dot_tiles_of_bitwise_run(fp4_dot_tiles_on_this_thread, tw.view, x, 1, std::to_string(odd)), 0) << odd;
  }
  // Rows of one call may differ: a row tile with one out-of-range block falls back alone.
  TestWeight mixed = make_weight(DType::fp4_e2m1, 64, 512, rng, 117, 127);
  mixed.scale[size_t(20 * (512 / 32) + 3)] = 0;   // row 20: tile 5 of 16
  for (int64_t n : {1, 12}) {
    const std::vector<float> x = bf16_exact(make_acts(n, 512, rng));
    EXPECT_EQ(dot_tiles_of_bitwise_run(fp4_dot_tiles_on_this_thread, mixed.view, x, n, "mixed n=" + std::to_string(n)),
              15 * ((n + 3) / 4)) << "n=" << n;
  }
}

// The FP8 product on vdpbf16ps (from 2 tokens, matvec and GEMM; bf16 activations) gives the
// generic order's bits wherever it runs — random codes, so zero and subnormal weights (the
// looked-up ones) in every tile — and leaves to the f32 kernels every 128-row block where it may
// not: a scale code below 10, products
// that could make a partial sum subnormal (e + f < 144), or activations that are not bf16 values.
TEST_F(MatmulTest, Fp8DotProductEqualsFmaOrderWhereItRuns) {
  const Bf16DotSelected dot;
  if (!dot.ok()) GTEST_SKIP() << "no AVX-512 with a usable AVX512-BF16 on this CPU";
  omp_set_num_threads(1);   // the tile counter is per thread
  std::mt19937 rng(43);
  struct Case {
    const char* what;
    int64_t rows, cols;
    int e_lo, e_hi;   // weight scale codes
    float x_scale;    // activations: N(0,1) times this, rounded to bf16 unless !exact_x
    bool exact_x;
    bool runs;        // the dot path takes every tile
  };
  const Case cases[] = {
      {"typical", 261, 512, 112, 132, 1.0f, true, true},
      {"a partial 128-column block", 130, 32 * 7 + 128, 117, 127, 1.0f, true, true},
      {"activations not bf16", 128, 256, 117, 127, 1.0f, false, false},
      {"scale code 9", 128, 256, 9, 9, 1.0f, true, false},
      // |x| around 2^-20 with e <= 12: e + f far below 144.
      {"tiny products", 128, 256, 10, 12, 0x1p-20f, true, false},
  };
  for (const Case& c : cases) {
    const TestWeight tw = make_weight(DType::fp8_e4m3, c.rows, c.cols, rng, c.e_lo, c.e_hi);
    for (int64_t n : {1, 2, 5, 6, 7, 8, 9, 50}) {
      std::vector<float> x = make_acts(n, c.cols, rng);
      for (float& v : x) v *= c.x_scale;
      if (c.exact_x) x = bf16_exact(x);
      const std::string what = std::string(c.what) + " n=" + std::to_string(n);
      // One token keeps the FMA matvec; from two on (a verify chunk, a few sequences) and in
      // the GEMM, tiles of 3 rows x up to 6 tokens, in every 128-row block.
      const int64_t row_tiles = (c.rows / 128) * 43 + (c.rows % 128 + 2) / 3;
      EXPECT_EQ(dot_tiles_of_bitwise_run(fp8_dot_tiles_on_this_thread, tw.view, x, n, what),
                c.runs && n >= 2 ? row_tiles * ((n + 5) / 6) : 0) << what;
    }
  }
  // One 128-row block with a scale code out of range falls back alone.
  TestWeight mixed = make_weight(DType::fp8_e4m3, 384, 256, rng, 117, 127);
  mixed.scale[size_t(1 * 2 + 1)] = 5;   // row block 1, column block 1
  for (int64_t n : {6, 12}) {
    const std::vector<float> x = bf16_exact(make_acts(n, 256, rng));
    EXPECT_EQ(dot_tiles_of_bitwise_run(fp8_dot_tiles_on_this_thread, mixed.view, x, n, "mixed n=" + std::to_string(n)),
              2 * 43 * ((n + 5) / 6)) << "n=" << n;
  }
}

}  // namespace
}  // namespace dsv4::kernels

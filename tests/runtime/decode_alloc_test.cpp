// A warm decode step allocates nothing (STYLE §3; issue #5): counts every heap allocation of the
// process — operator new, the C allocator used by libgomp and the kernels' aligned scratch —
// during decode steps after warm-up, and expects zero.
//
// The test binary replaces the C allocator's entry points with counting wrappers around glibc's
// own implementation (__libc_malloc & co., exported for exactly this kind of interposition);
// operator new of libstdc++ goes through malloc, so it is counted too. Counting is off except
// inside AllocCounter's scope, so the other tests only pay an atomic load per allocation.
// Under AddressSanitizer the sanitizer owns the allocator (its operator new does not go through
// malloc, and mixing the two would corrupt the heap), so there the wrappers are left out and the
// tests skip; the plain build runs them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "eval/quiet_synth_options.h"
#include "eval/synth.h"
#include "io/test_tmp_dir.h"
#include "kernels/cpu/matmul.h"
#include "model/dspark.h"
#include "model/forward.h"
#include "runtime/engine.h"
#include "test_paths.h"

#if defined(__SANITIZE_ADDRESS__)
#define DSV4_COUNT_ALLOCATIONS 0
#else
#define DSV4_COUNT_ALLOCATIONS 1
#endif

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
// A breakpoint here (gdb: break alloc_counted) shows who allocates.
__attribute__((noinline)) void alloc_counted() { g_allocations.fetch_add(1, std::memory_order_relaxed); }
inline void count_one() {
  if (g_counting.load(std::memory_order_relaxed)) alloc_counted();
}
}  // namespace

#if DSV4_COUNT_ALLOCATIONS
extern "C" {
void* malloc(size_t n) {
  count_one();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
  count_one();
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  count_one();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(size_t a, size_t n) {
  count_one();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  count_one();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  count_one();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif  // DSV4_COUNT_ALLOCATIONS

namespace dsv4::runtime {
namespace {

// Allocations made by this thread and every other thread of the process while alive.
class AllocCounter {
 public:
  AllocCounter() {
    g_allocations.store(0);
    g_counting.store(true);
  }
  ~AllocCounter() { g_counting.store(false); }
  long count() const { return g_allocations.load(); }
};

int32_t argmax(const std::vector<float>& v, size_t off, size_t n) {
  size_t best = off;
  for (size_t i = off; i < off + n; ++i)
    if (v[i] > v[best]) best = i;
  return int32_t(best - off);
}

// Prefill, `warmup` decode steps, then `steps` counted ones, for `streams` sequences decoded in
// one batched step (the server's continuous batching).
void expect_no_allocation(const std::string& dir, int streams, int64_t prompt, int64_t warmup, int64_t steps) {
  if (!DSV4_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  SCOPED_TRACE(dir + ", " + std::to_string(streams) + " sequence(s)");
  auto e = Engine::load(dir, {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  Engine& engine = **e;
  const size_t V = size_t(engine.config().vocab_size);
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<Sequence*> ptrs;
  std::vector<float> logits(V * size_t(streams));
  std::vector<int32_t> next(static_cast<size_t>(streams));
  for (int s = 0; s < streams; ++s) {
    seqs.push_back(engine.new_sequence());
    ptrs.push_back(seqs.back().get());
    std::vector<int32_t> p(static_cast<size_t>(prompt));
    for (int64_t i = 0; i < prompt; ++i) p[size_t(i)] = int32_t(2 + (i * 7 + s * 13) % int64_t(V - 2));
    ASSERT_TRUE(engine.step(*seqs.back(), p, logits.data()).ok());
    next[size_t(s)] = argmax(logits, 0, V);
    seqs.back()->reserve(prompt + warmup + steps);
  }
  std::vector<std::span<const int32_t>> feeds(static_cast<size_t>(streams));
  auto decode = [&] {
    for (int s = 0; s < streams; ++s) feeds[size_t(s)] = std::span<const int32_t>(&next[size_t(s)], 1);
    ASSERT_TRUE(engine.step(ptrs, feeds, logits.data()).ok());
    for (int s = 0; s < streams; ++s) next[size_t(s)] = argmax(logits, size_t(s) * V, V);
  };
  for (int64_t i = 0; i < warmup; ++i) decode();
  long allocations = 0;
  {
    AllocCounter counter;
    for (int64_t i = 0; i < steps; ++i) decode();
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0) << "heap allocations during " << steps << " warm decode steps";
}

TEST(DecodeAllocations, NoneInWarmDecodeStepsOnTinyFixture) {
  // 150 tokens: past the 128-token window, so CSA top-k selection and HCA entries are live.
  expect_no_allocation(test::fixture_dir("tiny") + "/checkpoint", 1, 150, 8, 24);
}

TEST(DecodeAllocations, NoneInWarmBatchedDecodeStepsOnTinyCFixture) {
  expect_no_allocation(test::fixture_dir("tiny-c") + "/checkpoint", 3, 140, 8, 24);
}

// The DSpark calls of a round (model/dspark.h) allocate nothing once warm either: the draft block,
// the Markov terms and confidences of its rows, and absorbing the committed rows (here all of
// them), on a checkpoint shaped like Flash-0731. Only they are counted: the verify chunk's target
// forward (several rows at once) is the runtime's to keep allocation-free.
TEST(DecodeAllocations, NoneInWarmDsparkRounds) {
  if (!DSV4_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  test::TempDir dir;
  ASSERT_TRUE(eval::synth_checkpoint(test::quiet_synth_options(eval::SynthPreset::tiny_0731), dir.path()).ok());
  auto loaded = model::load_model(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const model::Model& m = **loaded;
  const int64_t V = m.cfg.vocab_size, D = m.cfg.hidden_size, G = m.cfg.dspark.block_size, prompt = 140;
  const int64_t rounds = 6, warmup = 3;
  model::SequenceState seq = model::make_sequence_state(m.cfg);
  seq.reserve(prompt + (warmup + rounds) * (G + 1));
  model::DsparkState st = model::make_dspark_state(m);
  model::Scratch s;
  model::Batch batch;
  std::vector<float> X(static_cast<size_t>(prompt * m.cfg.hc_mult * D));
  std::vector<float> taps(static_cast<size_t>(prompt * model::dspark_tap_width(m.cfg)));
  std::vector<float> base(static_cast<size_t>(G * V)), y(static_cast<size_t>(G * D));
  std::vector<int32_t> tokens(static_cast<size_t>(prompt));
  for (int64_t i = 0; i < prompt; ++i) tokens[size_t(i)] = int32_t(2 + (i * 7) % (V - 2));
  long allocations = 0;
  bool counting = false;
  auto count = [&](auto&& calls) {
    if (!counting) return calls();
    AllocCounter counter;
    calls();
    allocations += counter.count();
  };
  auto verify = [&](int64_t n) {   // the target over the chunk, with taps; then the drafter absorbs it
    batch.clear();
    batch.add(&seq, tokens.data(), n, seq.pos);
    s.begin_step();
    model::forward_streams(m, batch, X.data(), s, taps.data());
    count([&] { ASSERT_TRUE(model::dspark_absorb(m, st, taps.data(), n, s).ok()); });
  };
  verify(prompt);
  int32_t anchor = 5;
  auto round = [&] {
    s.begin_step();
    count([&] {
      ASSERT_TRUE(model::dspark_draft_block(m, st, anchor, base.data(), y.data(), s).ok());
      tokens[0] = anchor;
      for (int64_t i = 0; i < G; ++i) {   // greedy Markov loop (addendum §A4.10)
        float* z = base.data() + i * V;
        model::dspark_markov_add(m, tokens[size_t(i)], z, s);
        (void)model::dspark_confidence(m, y.data() + i * D, tokens[size_t(i)], s);   // only its cost matters
        tokens[size_t(i + 1)] = int32_t(std::max_element(z, z + V) - z);
      }
    });
    verify(G + 1);
    anchor = tokens[size_t(G)];
  };
  for (int64_t i = 0; i < warmup; ++i) round();
  // A product's per-thread kernel scratch grows the first time its thread meets a wider product
  // (kernels/cpu/matmul.cpp), and which pool thread runs which chunk varies with the machine's
  // load: make every thread meet the drafter's widest one (main_proj, |T|·D columns) once.
#pragma omp parallel
  {
    std::vector<float> x(static_cast<size_t>(m.w.dspark.main_proj.cols)), out(static_cast<size_t>(D));
    kernels::matmul(m.w.dspark.main_proj, x.data(), 1, out.data());   // in a region: on this thread
  }
  counting = true;
  for (int64_t i = 0; i < rounds; ++i) round();
  EXPECT_EQ(allocations, 0) << "heap allocations by the DSpark calls of " << rounds << " warm rounds";
}

TEST(DecodeAllocations, CounterSeesOperatorNew) {
  if (!DSV4_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  AllocCounter counter;
  auto* v = new std::vector<int>(1000);
  delete v;
  EXPECT_GE(counter.count(), 2);
}

}  // namespace
}  // namespace dsv4::runtime

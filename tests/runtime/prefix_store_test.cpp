// The prefix cache's state files: a round trip gives the same state, and a file that is
// corrupt, truncated, foreign or stale is refused and removed, never trusted.
#include "runtime/prefix_store.h"

#include <gtest/gtest.h>
#include <sys/time.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/split_invariance.h"
#include "test_paths.h"

namespace dsv4::runtime {
namespace {

namespace fs = std::filesystem;
using Tokens = std::vector<int32_t>;

class PrefixStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = Engine::load(test::demo_model_dir(), {});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    dir_ = ::testing::TempDir() + "/dsv4-prefix-store-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    tokens_ = test_tokens(60, engine_->config().vocab_size);
  }
  void TearDown() override { fs::remove_all(dir_); }

  PrefixStoreOptions options(std::string fingerprint = "fp") const {
    PrefixStoreOptions o;
    o.dir = dir_;
    o.fingerprint = std::move(fingerprint);
    return o;
  }
  std::unique_ptr<PrefixStore> open(const PrefixStoreOptions& o) {
    auto s = PrefixStore::open(*engine_, o);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  // The state after the first n tokens, and the logits after the next token.
  std::shared_ptr<Sequence> state(size_t n) {
    std::shared_ptr<Sequence> s = engine_->new_sequence();
    std::vector<float> logits(size_t(engine_->config().vocab_size));
    EXPECT_TRUE(engine_->step(*s, std::span(tokens_.data(), n), logits.data()).ok());
    return s;
  }
  std::vector<float> next_logits(Sequence& s) {
    std::vector<float> logits(size_t(engine_->config().vocab_size));
    const size_t p = size_t(s.position());
    EXPECT_TRUE(engine_->step(s, std::span(tokens_.data() + p, 1), logits.data()).ok());
    return logits;
  }
  // Writes the state after 40 tokens and returns its file's path.
  std::string write_one(const std::string& fingerprint = "fp") {
    auto store = open(options(fingerprint));
    store->put(std::span(tokens_.data(), 40), state(40));
    store->flush();
    EXPECT_EQ(store->stats().written, 1u);
    return dir_ + "/" + PrefixStore::file_name(fingerprint, std::span(tokens_.data(), 40));
  }
  void expect_refused(const std::string& path) {
    auto store = open(options());
    PrefixStore::Hit h = store->find(tokens_, 0, 59);
    EXPECT_FALSE(h.seq);
    EXPECT_EQ(store->stats().refused, 1u);
    EXPECT_FALSE(fs::exists(path)) << "a refused file is removed";
  }

  std::unique_ptr<Engine> engine_;
  std::string dir_;
  Tokens tokens_;
};

TEST_F(PrefixStoreTest, RoundTripContinuesIdentically) {
  const std::string path = write_one();
  ASSERT_TRUE(fs::exists(path));
  auto store = open(options());
  EXPECT_FALSE(store->find(tokens_, 40, 59).seq) << "only depths above min_depth";
  EXPECT_FALSE(store->find(tokens_, 0, 39).seq) << "only depths up to max_depth";
  Tokens other = tokens_;
  other[7] += 1;
  EXPECT_FALSE(store->find(other, 0, 59).seq) << "another prefix";
  PrefixStore::Hit h = store->find(tokens_, 0, 59);
  ASSERT_TRUE(h.seq);
  EXPECT_EQ(h.depth, 40);
  auto fresh = state(40);
  const auto want = next_logits(*fresh), got = next_logits(*h.seq);
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  EXPECT_EQ(store->stats().hits, 1u);
}

TEST_F(PrefixStoreTest, CorruptPayloadIsRefusedAndRemoved) {
  const std::string path = write_one();
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-100, std::ios::end);
    const char c = char(f.get());
    f.seekp(-100, std::ios::end);
    f.put(char(c ^ 0x5a));
  }
  expect_refused(path);
}

TEST_F(PrefixStoreTest, TruncatedFileIsRefusedAndRemoved) {
  const std::string path = write_one();
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_refused(path);
}

TEST_F(PrefixStoreTest, FileOfAnotherCheckpointIsRefusedAndRemoved) {
  const std::string foreign = write_one("another checkpoint");
  const std::string path = dir_ + "/" + PrefixStore::file_name("fp", std::span(tokens_.data(), 40));
  fs::rename(foreign, path);
  expect_refused(path);
}

TEST_F(PrefixStoreTest, GarbageAndEmptyFilesAreRefusedAndRemoved) {
  const std::string path = dir_ + "/" + PrefixStore::file_name("fp", std::span(tokens_.data(), 40));
  fs::create_directories(dir_);
  std::ofstream(path) << "not a state file";
  expect_refused(path);
  std::ofstream(path).close();
  expect_refused(path);
}

// A valid file whose state belongs to another model (the same fingerprint claimed) fails the
// engine's own checks.
TEST_F(PrefixStoreTest, StateOfAnotherModelIsRefusedByTheEngine) {
  auto tiny = Engine::load(test::fixture_dir("tiny") + "/checkpoint", {});
  ASSERT_TRUE(tiny.ok());
  std::vector<uint8_t> bytes;
  auto seq = (*tiny)->new_sequence();
  ASSERT_TRUE((*tiny)->save_sequence(*seq, &bytes).ok());
  auto loaded = engine_->load_sequence(bytes);
  EXPECT_EQ(loaded.status().code(), StatusCode::corrupt_data);
  bytes.resize(bytes.size() / 2);
  EXPECT_EQ((*tiny)->load_sequence(bytes).status().code(), StatusCode::corrupt_data);
}

TEST_F(PrefixStoreTest, SizeCapEvictsTheLeastRecentlyUsed) {
  const std::string first = write_one();
  const uint64_t one = fs::file_size(first);
  PrefixStoreOptions o = options();
  o.max_bytes = one * 5 / 2;   // two files of ~40 tokens
  auto store = open(o);
  store->put(std::span(tokens_.data(), 41), state(41));
  store->flush();
  EXPECT_TRUE(store->find(tokens_, 0, 40).seq);   // the first becomes the most recently used
  store->put(std::span(tokens_.data(), 42), state(42));
  store->flush();
  EXPECT_EQ(store->stats().files, 2u);
  EXPECT_LE(store->stats().bytes, o.max_bytes);
  EXPECT_TRUE(fs::exists(first));
  EXPECT_FALSE(fs::exists(dir_ + "/" + PrefixStore::file_name("fp", std::span(tokens_.data(), 41))));
}

TEST_F(PrefixStoreTest, StaleTemporaryFilesAreRemovedAtOpen) {
  fs::create_directories(dir_);
  const std::string stale = dir_ + "/40-0000000000000000.kv.123.tmp", young = dir_ + "/41-0000000000000000.kv.124.tmp";
  std::ofstream(stale) << "x";
  std::ofstream(young) << "x";
  struct timeval old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimes(stale.c_str(), old), 0);
  auto store = open(options());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(young)) << "perhaps another server's write in progress";
  EXPECT_EQ(store->stats().files, 0u);
}

}  // namespace
}  // namespace dsv4::runtime

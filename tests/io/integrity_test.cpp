#include "io/integrity.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "test_paths.h"
#include "test_tmp_dir.h"

namespace dsv4::io {
namespace {

namespace fs = std::filesystem;

using test::slurp;

void flip_byte(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x40);
  f.seekp(std::streamoff(offset));
  f.write(&c, 1);
}

void set_mtime(const std::string& path, time_t sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

struct timespec mtime_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mtim;
}

// Past the cache's ctime window (integrity.cpp): setting a file's times stamps its ctime with now.
void let_ctime_settle() { std::this_thread::sleep_for(std::chrono::milliseconds(150)); }

// Each test gets its own model copy and its own verification cache (DSV4_CACHE_DIR).
class Integrity : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DSV4_CACHE_DIR", cache_.path().c_str(), 1);
    for (const auto& e : fs::directory_iterator(test::fixture_dir("tiny") + "/checkpoint")) {
      fs::copy_file(e.path(), fs::path(model_.path()) / e.path().filename());
      fs::permissions(fs::path(model_.path()) / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
      // Older than the cache's racy window, as a downloaded model would be.
      set_mtime((fs::path(model_.path()) / e.path().filename()).string(), ::time(nullptr) - 3600);
    }
    let_ctime_settle();
    opt_.progress = false;
  }
  void TearDown() override { ::unsetenv("DSV4_CACHE_DIR"); }

  test::TempDir cache_, model_;
  VerifyOptions opt_;
};

TEST(Sha256, KnownVectors) {
  Sha256 a;
  a.update("abc", 3);
  EXPECT_EQ(a.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 empty;
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Sums, ParsesTheSha256sumFormatAndRejectsGarbage) {
  const std::string h(64, 'a');
  auto ok = parse_sha256sums(h + "  a.json\n\n" + std::string(64, 'B') + " *b c.safetensors\r\n", "S");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].file, "b c.safetensors");
  EXPECT_EQ((*ok)[1].sha256, std::string(64, 'b'));
  EXPECT_EQ(format_sha256sums(*ok), h + "  a.json\n" + std::string(64, 'b') + "  b c.safetensors\n");
  for (const std::string& bad : {h + " a", h.substr(1) + "   a", std::string(63, 'a') + "g  a", h + "  /etc/passwd",
                                h + "  ../x", std::string("hello")}) {
    auto r = parse_sha256sums(bad + "\n", "S");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("S:1: ", 0), 0u) << r.status().message();
  }
}

TEST_F(Integrity, DemoModelMatchesItsSha256sums) {
  VerifyReport rep;
  Status s = verify_model_dir(test::shared_dir() + "/models/dsv4-demo", opt_, &rep);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(rep.files, 9u);
}

TEST_F(Integrity, WriteThenVerifyAndTheCacheAvoidsRehashing) {
  VerifyReport rep;
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.hashed, 5u);
  // Same format and digests as coreutils would produce for these files.
  auto sums = parse_sha256sums(slurp(model_ / "SHA256SUMS"), "SHA256SUMS");
  ASSERT_TRUE(sums.ok());
  ASSERT_EQ(sums->size(), 5u);
  for (const auto& e : *sums) EXPECT_EQ(sha256_file(model_ / e.file).value(), e.sha256) << e.file;

  // The files were just hashed by --write: a verify finds them all in the cache.
  ASSERT_TRUE(verify_model_dir(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.files, 5u);
  EXPECT_EQ(rep.hashed, 0u);
  EXPECT_EQ(rep.cache_hits, 5u);
  ASSERT_TRUE(ensure_verified(model_.path(), false, &rep).ok());
  EXPECT_EQ(rep.hashed, 0u);

  // Without the cache everything is read again.
  VerifyOptions nocache = opt_;
  nocache.use_cache = false;
  ASSERT_TRUE(verify_model_dir(model_.path(), nocache, &rep).ok());
  EXPECT_EQ(rep.hashed, 5u);
}

TEST_F(Integrity, ChangedMtimeTriggersARehash) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  set_mtime(model_ / "config.json", 1000000000);
  let_ctime_settle();
  VerifyReport rep;
  ASSERT_TRUE(ensure_verified(model_.path(), false, &rep).ok());
  EXPECT_EQ(rep.hashed, 1u);
  EXPECT_EQ(rep.cache_hits, 4u);
  ASSERT_TRUE(ensure_verified(model_.path(), false, &rep).ok());   // and is cached again
  EXPECT_EQ(rep.hashed, 0u);
}

TEST_F(Integrity, FlippedByteFailsNamingTheFile) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  const std::string shard = model_ / "model-00002-of-00002.safetensors";
  flip_byte(shard, 100000);
  set_mtime(shard, 1234567890);
  VerifyReport rep;
  Status s = ensure_verified(model_.path(), false, &rep);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::corrupt_data);
  EXPECT_NE(s.message().find("model-00002-of-00002.safetensors: sha256 mismatch"), std::string::npos) << s.message();
  EXPECT_EQ(rep.hashed, 1u);
  // Still fails on the next start: a bad file never becomes "verified".
  EXPECT_FALSE(ensure_verified(model_.path(), false).ok());
  EXPECT_TRUE(ensure_verified(model_.path(), true).ok());   // --skip-verify
}

// The attack of issue #15: edit a shard and put its mtime back (as `touch -r` does). Size and
// mtime match the cache entry; the ctime the edit left behind does not.
TEST_F(Integrity, FlippedByteWithRestoredMtimeIsStillCaught) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  const std::string shard = model_ / "model-00001-of-00002.safetensors";
  const struct timespec before = mtime_of(shard);
  VerifyReport rep;
  ASSERT_TRUE(verify_model_dir(model_.path(), opt_, &rep).ok());
  ASSERT_EQ(rep.cache_hits, 5u);   // the shard's digest now comes from the cache
  flip_byte(shard, 4096);
  struct timespec ts[2] = {before, before};
  ASSERT_EQ(::utimensat(AT_FDCWD, shard.c_str(), ts, 0), 0);
  ASSERT_EQ(mtime_of(shard).tv_sec, before.tv_sec);
  ASSERT_EQ(mtime_of(shard).tv_nsec, before.tv_nsec);
  let_ctime_settle();   // even once the change is no longer recent
  Status s = verify_model_dir(model_.path(), opt_, &rep);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::corrupt_data);
  EXPECT_NE(s.message().find("model-00001-of-00002.safetensors: sha256 mismatch"), std::string::npos) << s.message();
  EXPECT_EQ(rep.hashed, 1u);
  EXPECT_EQ(rep.cache_hits, 4u);
}

// A file replaced by another (new inode) with the same size and times is hashed again.
TEST_F(Integrity, ReplacedFileIsRehashed) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  const std::string cfg = model_ / "config.json";
  const struct timespec before = mtime_of(cfg);
  fs::copy_file(cfg, cfg + ".new");
  fs::rename(cfg + ".new", cfg);
  struct timespec ts[2] = {before, before};
  ASSERT_EQ(::utimensat(AT_FDCWD, cfg.c_str(), ts, 0), 0);
  let_ctime_settle();
  VerifyReport rep;
  ASSERT_TRUE(verify_model_dir(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.hashed, 1u);
  EXPECT_EQ(rep.cache_hits, 4u);
}

TEST_F(Integrity, MissingSumsFileTellsWhatToDo) {
  Status s = ensure_verified(model_.path(), false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::not_found);
  EXPECT_NE(s.message().find("dsv4 verify --write"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--skip-verify"), std::string::npos) << s.message();
  EXPECT_TRUE(ensure_verified(model_.path(), true).ok());
}

TEST_F(Integrity, MissingAndUnlistedFilesAreReported) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  fs::rename(model_ / "model-00001-of-00002.safetensors", model_ / "model-00001-of-00003.safetensors");
  Status s = verify_model_dir(model_.path(), opt_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::not_found);
  EXPECT_NE(s.message().find("model-00001-of-00002.safetensors: listed in SHA256SUMS but missing"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("and 1 more"), std::string::npos) << s.message();
  fs::rename(model_ / "model-00001-of-00003.safetensors", model_ / "model-00001-of-00002.safetensors");
  fs::copy_file(model_ / "config.json", model_ / "model-00003-of-00003.safetensors");
  s = verify_model_dir(model_.path(), opt_);
  EXPECT_NE(s.message().find("model-00003-of-00003.safetensors: not listed in SHA256SUMS"), std::string::npos)
      << s.message();
  // --write adds it, after which everything verifies.
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  EXPECT_TRUE(verify_model_dir(model_.path(), opt_).ok());
}

// A process that maps some shards only (an expert-parallel rank, io::unneeded_shards) checks the
// others neither for their bytes nor for their presence.
TEST_F(Integrity, SkippedFilesAreNeitherCheckedNorRequired) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  fs::remove(model_ / "model-00002-of-00002.safetensors");
  VerifyReport rep;
  EXPECT_FALSE(verify_model_dir(model_.path(), opt_).ok());
  opt_.skip_files = {"model-00002-of-00002.safetensors"};
  Status s = verify_model_dir(model_.path(), opt_, &rep);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(rep.files, 4u);
}

TEST_F(Integrity, CacheLocationFollowsTheEnvironment) {
  EXPECT_EQ(verified_cache_path(), cache_.path() + "/verified.json");
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  EXPECT_TRUE(fs::exists(cache_ / "verified.json"));
  ::unsetenv("DSV4_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/x/y", 1);
  EXPECT_EQ(verified_cache_path(), "/x/y/dsv4/verified.json");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("DSV4_CACHE_DIR", cache_.path().c_str(), 1);
}

TEST_F(Integrity, FilesModifiedJustBeforeHashingAreNotCached) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  flip_byte(model_ / "config.json", 10);   // mtime = now: same tick as a later write could be
  VerifyReport rep;
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.hashed, 1u);
  ASSERT_TRUE(verify_model_dir(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.hashed, 1u);   // hashed again rather than trusted
  EXPECT_EQ(rep.cache_hits, 4u);
}

TEST_F(Integrity, CorruptCacheIsIgnored) {
  ASSERT_TRUE(write_sha256sums(model_.path(), opt_).ok());
  std::ofstream(cache_ / "verified.json") << "{not json";
  VerifyReport rep;
  ASSERT_TRUE(verify_model_dir(model_.path(), opt_, &rep).ok());
  EXPECT_EQ(rep.hashed, 5u);
}

}  // namespace
}  // namespace dsv4::io

// `dsv4 synth`, `dsv4 verify` and `dsv4 inspect` end to end through the built binary.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "test_paths.h"
#include "io/test_tmp_dir.h"

namespace dsv4::cli {
namespace {

// Exit status of a shell command (output discarded).
int run(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(SynthVerifyCli, SynthThenVerifyThenInspect) {
  test::TempDir cache, model;
  const std::string env = "DSV4_CACHE_DIR=" + cache.path() + " ";
  const std::string bin = test::cli_path();
  const std::string dir = model / "m";
  ASSERT_EQ(run(env + bin + " synth --preset tiny --layers 2 --experts 4 --seed 9 -o " + dir), 0);
  EXPECT_EQ(run(env + bin + " inspect -m " + dir), 0);
  EXPECT_EQ(run(env + bin + " verify -m " + dir), 0);
  EXPECT_EQ(run(env + bin + " verify --no-cache -m " + dir), 0);
  // Writing again into the same directory needs --force.
  EXPECT_NE(run(env + bin + " synth --preset tiny -o " + dir), 0);
  EXPECT_EQ(run(env + bin + " synth --preset tiny --force -o " + dir), 0);
  // A corrupted shard fails verification; --write accepts the new content.
  {
    std::fstream f(dir + "/model-00002-of-00002.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x7f');
  }
  EXPECT_EQ(run(env + bin + " verify -m " + dir), 1);
  EXPECT_EQ(run(env + bin + " verify --write -m " + dir), 0);
  EXPECT_EQ(run(env + bin + " verify -m " + dir), 0);
  // Bad arguments.
  EXPECT_NE(run(env + bin + " synth --preset huge -o " + dir), 0);
  EXPECT_NE(run(env + bin + " synth --preset tiny"), 0);
  EXPECT_NE(run(env + bin + " verify -m " + model / "absent"), 0);
}

// stdout of a shell command (stderr discarded).
std::string output_of(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

// `dsv4 inspect` names the revision and the drafter (issue #14; addendum §A1).
TEST(SynthVerifyCli, InspectNamesRevisionAndDrafter) {
  test::TempDir cache, model;
  const std::string env = "DSV4_CACHE_DIR=" + cache.path() + " ";
  const std::string bin = env + test::cli_path();
  struct Case { const char* synth; const char* says; };
  for (const Case& c : {Case{"--preset tiny-0731", "revision 0731, drafter DSpark with 3 stages"},
                        Case{"--preset tiny-0813 --layers 3", "revision 0813, drafter DSpark with 3 stages"},
                        Case{"--preset tiny", "revision preview, drafter MTP-1"},
                        Case{"--preset tiny --set num_nextn_predict_layers=0 --set compress_ratios=[0,4,128,4]",
                             "revision preview, drafter none"}}) {
    const std::string dir = model / "m";
    ASSERT_EQ(run(bin + " synth --force " + c.synth + " -o " + dir), 0) << c.synth;
    const std::string out = output_of(bin + " inspect -m " + dir);
    EXPECT_NE(out.find(c.says), std::string::npos) << c.synth << ":\n" << out;
  }
}

// `verify` says which results came from its cache, and --no-cache reads every file again.
TEST(SynthVerifyCli, VerifySaysWhenItReliesOnTheCache) {
  test::TempDir cache, model;
  const std::string bin = "DSV4_CACHE_DIR=" + cache.path() + " " + test::cli_path();
  const std::string dir = model / "m";
  ASSERT_EQ(run(bin + " synth --preset tiny --layers 1 --experts 4 -o " + dir), 0);
  // Files written just now are never cached (integrity.h): age them as a download would be.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const struct timespec old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const std::string first = output_of(bin + " verify -m " + dir);
  EXPECT_NE(first.find("match SHA256SUMS"), std::string::npos) << first;
  EXPECT_EQ(first.find("verification cache"), std::string::npos) << first;
  const std::string second = output_of(bin + " verify -m " + dir);
  EXPECT_NE(second.find("from the verification cache"), std::string::npos) << second;
  const std::string rehashed = output_of(bin + " verify --no-cache -m " + dir);
  EXPECT_NE(rehashed.find("match SHA256SUMS"), std::string::npos) << rehashed;
  EXPECT_EQ(rehashed.find("verification cache"), std::string::npos) << rehashed;
}

}  // namespace
}  // namespace dsv4::cli

// `dsv4 run` on a checkpoint with NaN weights (whose SHA256SUMS match: the file is as published)
// prints an error and exits non-zero instead of printing token 0 forever (issue #15).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "eval/nan_weights.h"
#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::cli {
namespace {

// Exit status and combined stdout + stderr of a shell command.
std::pair<int, std::string> run_capturing(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, out};
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

TEST(NanWeightsCli, RunFailsWithAClearError) {
  test::TempDir cache, model;
  const std::string bin = "DSV4_CACHE_DIR=" + cache.path() + " " + test::cli_path();
  const std::string dir = model / "m";
  // The full vocabulary, so that the vendored tokenizer's ids fit.
  ASSERT_EQ(run_capturing(bin + " synth --preset tiny --layers 1 --experts 4 --vocab 129280 -o " + dir).first, 0);
  ASSERT_TRUE(test::write_nan_weights(dir, "norm.weight").ok());
  ASSERT_EQ(run_capturing(bin + " verify --write -m " + dir).first, 0);
  auto [rc, out] = run_capturing(bin + " run -m " + dir + " --raw --temperature 0 -n 8 -p hello");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("non-finite logit"), std::string::npos) << out;
}

}  // namespace
}  // namespace dsv4::cli

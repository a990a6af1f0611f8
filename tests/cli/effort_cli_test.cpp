// `run`, `chat` and `render -m` render in the encoder revision of the checkpoint they are given
// (addendum §A6.5) and take --effort / options.reasoning_effort as a level of that encoder
// (§A6.1): a synthetic 0731 checkpoint against the bundled preview demo model.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::cli {
namespace {

struct Outcome {
  int rc = -1;
  std::string output;  // stdout, then stderr
};

Outcome run(const std::string& cmd) {
  Outcome o;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.output.append(buf, n);
  const int status = ::pclose(p);
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

bool has(const Outcome& o, const std::string& needle) { return o.output.find(needle) != std::string::npos; }

// "prompt N tokens" of a run's statistics line, or -1.
int prompt_tokens(const Outcome& o) {
  const size_t at = o.output.find("prompt ");
  return at == std::string::npos ? -1 : std::atoi(o.output.c_str() + at + 7);
}

class EffortCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cache_ = new test::TempDir;
    models_ = new test::TempDir;
    env_ = "DSV4_CACHE_DIR=" + cache_->path() + " OMP_WAIT_POLICY=passive ";
    m0731_ = *models_ / "m0731";
    // The demo model's tokenizer (and vocabulary), so that its prompts fit the synthetic model.
    const Outcome synth = run(env_ + test::cli_path() + " synth --preset tiny-0731 --vocab 8192 --tokenizer-dir " +
                              test::demo_model_dir() + " -o " + m0731_);
    ASSERT_EQ(synth.rc, 0) << synth.output;
  }
  static void TearDownTestSuite() {
    delete models_;
    delete cache_;
  }
  static Outcome dsv4(const std::string& args) { return run(env_ + test::cli_path() + " " + args); }
  // `dsv4 run` of a one-token answer to "Hi" on `model` with `flags`.
  static Outcome answer(const std::string& model, const std::string& flags) {
    return dsv4("run -m " + model + " -p Hi -n 1 --temperature 0 " + flags);
  }

  static test::TempDir* cache_;
  static test::TempDir* models_;
  static std::string env_, m0731_;
};
test::TempDir* EffortCli::cache_ = nullptr;
test::TempDir* EffortCli::models_ = nullptr;
std::string EffortCli::env_, EffortCli::m0731_;

TEST_F(EffortCli, RenderFollowsTheCheckpointsEncoder) {
  const std::string line = R"('{"messages":[{"role":"user","content":"Hi"}],"options":{"reasoning_effort":"high"}}')";
  const std::string plain = R"({"prompt":"<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>"})";
  // The preview's "high" has no prefix; 0731's "high" is the preview's "max" text.
  Outcome preview = run("echo " + line + " | " + env_ + test::cli_path() + " render -m " + test::demo_model_dir());
  EXPECT_EQ(preview.rc, 0) << preview.output;
  EXPECT_EQ(preview.output, plain + "\n");
  Outcome r0731 = run("echo " + line + " | " + env_ + test::cli_path() + " render -m " + m0731_);
  EXPECT_EQ(r0731.rc, 0) << r0731.output;
  EXPECT_TRUE(has(r0731, R"({"prompt":"<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum with no shortcuts)"))
      << r0731.output;
  // Without -m the line's options alone select the encoder (default: the preview's).
  Outcome no_model = run("echo " + line + " | " + test::cli_path() + " render");
  EXPECT_EQ(no_model.output, plain + "\n");
  const std::string explicit_0731 =
      R"('{"messages":[{"role":"user","content":"Hi"}],"options":{"reasoning_effort":"low","revision":"v4-flash-0731"}}')";
  EXPECT_EQ(run("echo " + explicit_0731 + " | " + test::cli_path() + " render").output, plain + "\n");
  // A level the checkpoint's encoder lacks is that line's error.
  const std::string low = R"('{"messages":[{"role":"user","content":"Hi"}],"options":{"reasoning_effort":"low"}}')";
  Outcome bad = run("echo " + low + " | " + env_ + test::cli_path() + " render -m " + test::demo_model_dir());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_TRUE(has(bad, "(its levels: high, max)")) << bad.output;
  EXPECT_EQ(run("echo " + low + " | " + env_ + test::cli_path() + " render -m " + m0731_).rc, 0);
}

TEST_F(EffortCli, RunTakesTheLevelsOfTheCheckpointsEncoder) {
  // Preview (demo): high renders like no effort, max adds the Absolute-maximum text.
  const int demo_default = prompt_tokens(answer(test::demo_model_dir(), ""));
  ASSERT_GT(demo_default, 0);
  EXPECT_EQ(prompt_tokens(answer(test::demo_model_dir(), "--effort high")), demo_default);
  const int absolute_max = prompt_tokens(answer(test::demo_model_dir(), "--effort max"));
  EXPECT_GT(absolute_max, demo_default);
  EXPECT_EQ(prompt_tokens(answer(test::demo_model_dir(), "--think-max")), absolute_max);  // the documented alias
  // 0731: low is the default, high is the preview's max text, max a longer one (same tokenizer).
  EXPECT_EQ(prompt_tokens(answer(m0731_, "")), demo_default);
  EXPECT_EQ(prompt_tokens(answer(m0731_, "--effort low")), demo_default);
  EXPECT_EQ(prompt_tokens(answer(m0731_, "--effort high")), absolute_max);
  const Outcome beyond = answer(m0731_, "--effort max");
  EXPECT_GT(prompt_tokens(beyond), absolute_max) << beyond.output;
  EXPECT_EQ(prompt_tokens(answer(m0731_, "--think-max")), prompt_tokens(beyond));

  // A level the encoder lacks: an error naming the levels, before the model loads.
  Outcome low = answer(test::demo_model_dir(), "--effort low");
  EXPECT_EQ(low.rc, 1);
  EXPECT_TRUE(has(low, "'low' is not a level of the v4 chat encoder (its levels: high, max)")) << low.output;
  EXPECT_FALSE(has(low, "verify:")) << low.output;
  Outcome medium = answer(m0731_, "--effort medium");
  EXPECT_EQ(medium.rc, 1);
  EXPECT_TRUE(has(medium, "(its levels: low, high, max)")) << medium.output;
  // Conflicting flags are refused by the parser.
  EXPECT_NE(answer(m0731_, "--effort high --no-think").rc, 0);
  EXPECT_NE(answer(m0731_, "--effort high --think-max").rc, 0);
  EXPECT_NE(answer(m0731_, "--effort high --raw").rc, 0);
}

TEST_F(EffortCli, ChatWritesTheEffortWhereTheConversationStarts) {
  // Two turns: "prompt N tokens" of the first, then "prompt N tokens (M reused)" of the second.
  auto turns = [](const std::string& model, const std::string& flags) {
    return run("printf 'Hi\\nHi\\n/quit\\n' | " + env_ + test::cli_path() + " chat -m " + model +
               " -n 1 --temperature 0 " + flags);
  };
  auto second_turn_new_tokens = [](const Outcome& o) {
    const size_t at = o.output.find("prompt ", o.output.find("prompt ") + 1);
    if (at == std::string::npos) return -1;
    int total = 0, reused = 0;
    if (std::sscanf(o.output.c_str() + at, "prompt %d tokens (%d reused)", &total, &reused) != 2) return -1;
    return total - reused;
  };
  const Outcome plain = turns(m0731_, "");
  const Outcome high = turns(m0731_, "--effort high");
  EXPECT_EQ(high.rc, 0) << high.output;
  // The first turn opens with 0731's "high" text, the preview's "max" one.
  EXPECT_EQ(prompt_tokens(high), prompt_tokens(answer(test::demo_model_dir(), "--effort max"))) << high.output;
  // Later turns continue after it: they add what they add without an effort.
  EXPECT_GT(second_turn_new_tokens(plain), 0) << plain.output;
  EXPECT_EQ(second_turn_new_tokens(high), second_turn_new_tokens(plain)) << high.output;

  const Outcome low = turns(test::demo_model_dir(), "--effort low");
  EXPECT_EQ(low.rc, 1);
  EXPECT_TRUE(has(low, "(its levels: high, max)")) << low.output;
}

}  // namespace
}  // namespace dsv4::cli

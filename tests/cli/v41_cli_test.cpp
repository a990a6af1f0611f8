// DeepSeek-V4.1-Flash through the built binary (issue #20): `synth --preset tiny-v41` writes the
// released layout, `inspect` names the revision and architecture, `verify` checks it, and `run`
// generates from it (random weights: garbage text, but greedy output is the same every time).
// tests/scripts/v41_run_serve.sh runs `serve` on one. `render -m`, `run --effort` and
// `parse-completion` use the V4.1 chat encoder (v4.1 §11).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::cli {
namespace {

struct Ran {
  int rc;
  std::string out;   // stdout and stderr
};

Ran run(const std::string& cmd) {
  Ran r{-1, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(V41Cli, SynthInspectVerifyAndRun) {
  test::TempDir cache, model;
  const std::string bin = "DSV4_CACHE_DIR=" + cache.path() + " " + test::cli_path();
  const std::string dir = model / "m";
  ASSERT_EQ(run(bin + " synth --preset tiny-v41 --layers 25 --experts 4 --engram-vocab 40 --vocab 129280 -o " + dir).rc, 0);

  const Ran inspect = run(bin + " inspect -m " + dir);
  EXPECT_EQ(inspect.rc, 0) << inspect.out;
  for (const char* says : {"revision V4.1-Flash, drafter DSpark with 3 stages",
                           "layers 25 (+3 drafter)",
                           "architecture DeepseekV41ForCausalLM: layers 0-19 causal encoder, 20-24 decoder",
                           "compressors at 2,8,14,20 (ratios 2 2 2 1), indexers at 2,8,14,20,24, candidate blocks from 20",
                           "Engram at layers 1,14",
                           "drafter DSpark with 3 stages (speculative decoding, v4.1 §7): 4 experts top-2, taps the inputs "
                           "of layers 22,23,24",
                           "text forward pass: run, serve and bench work",
                           "vision tower present, not used: 2 layers"})
    EXPECT_NE(inspect.out.find(says), std::string::npos) << says << "\n" << inspect.out;

  const Ran verify = run(bin + " verify --no-cache -m " + dir);
  EXPECT_EQ(verify.rc, 0) << verify.out;
  EXPECT_NE(verify.out.find("match SHA256SUMS"), std::string::npos) << verify.out;

  // Greedy: the same tokens every time.
  const std::string cmd = bin + " run --raw --temperature 0 -n 6 -p 'def fibonacci(n):' -m " + dir;
  const Ran ran = run(cmd);
  EXPECT_EQ(ran.rc, 0) << ran.out;
  EXPECT_NE(ran.out.find("generated 6 tokens"), std::string::npos) << ran.out;
  const Ran first = run("{ " + cmd + " 2>/dev/null; }"), second = run("{ " + cmd + " 2>/dev/null; }");
  EXPECT_FALSE(first.out.empty());
  EXPECT_EQ(first.out, second.out);

  // Speculative decoding with the DSpark drafter (v4.1 §7; on by default) prints the same greedy
  // text as plain decoding, token for token.
  const std::string longer = bin + " run --raw --temperature 0 -n 40 -p 'def fibonacci(n):' -m " + dir;
  const Ran spec = run(longer + " --speculative auto --draft-tokens 5 --draft-confidence 0");
  const Ran plain = run(longer + " --speculative off");
  EXPECT_EQ(spec.rc, 0) << spec.out;
  EXPECT_EQ(plain.rc, 0) << plain.out;
  EXPECT_NE(spec.out.find("generated 40 tokens"), std::string::npos) << spec.out;
  EXPECT_NE(spec.out.find("(drafts: "), std::string::npos) << spec.out;
  EXPECT_EQ(plain.out.find("(drafts: "), std::string::npos) << plain.out;
  const Ran spec_text = run("{ " + longer + " --speculative auto --draft-confidence 0 2>/dev/null; }");
  const Ran plain_text = run("{ " + longer + " --speculative off 2>/dev/null; }");
  EXPECT_FALSE(plain_text.out.empty());
  EXPECT_EQ(spec_text.out, plain_text.out);
}

// The chat encoder needs only config.json (and tokenizer.json for --ids), so `render -m` works
// without loading the model; `run` checks --effort against the V4.1 encoder before it loads the
// model; `parse-completion` reads V4.1's DSML tags.
TEST(V41Cli, RenderRunEffortAndParseCompletionUseTheV41Encoder) {
  test::TempDir cache, model;
  const std::string bin = "DSV4_CACHE_DIR=" + cache.path() + " " + test::cli_path();
  const std::string dir = model / "m";
  ASSERT_EQ(run(bin + " synth --preset tiny-v41 --layers 25 --experts 4 --engram-vocab 40 --vocab 129280 -o " + dir).rc, 0);

  const std::string line = R"('{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}')";
  const Ran render = run("echo " + line + " | " + bin + " render -m " + dir);
  EXPECT_EQ(render.rc, 0) << render.out;
  EXPECT_EQ(render.out,
            R"({"prompt":"<｜begin▁of▁sentence｜><｜System｜>Reasoning Effort: 75 (range 1-100, the higher the value, )"
            R"(the more thorough the reasoning)\n\nS<｜User｜>hi<｜Assistant｜><think>"})"
            "\n");
  const std::string chat_low =
      R"('{"messages":[{"role":"user","content":"hi"}],"options":{"thinking_mode":"chat","reasoning_effort":"low"}}')";
  EXPECT_EQ(run("echo " + chat_low + " | " + bin + " render -m " + dir).out,
            R"({"prompt":"<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜></think>"})"
            "\n");
  EXPECT_EQ(run("echo " + line + " | " + bin + " render --ids -m " + dir).rc, 0);

  // --effort: a level of the released table is accepted; the pre-release xhigh is refused,
  // naming the levels, before the model loads.
  const Ran numeric = run(bin + " run -n 1 -p hi --effort 80 -m " + dir);
  EXPECT_EQ(numeric.rc, 0) << numeric.out;
  EXPECT_NE(numeric.out.find("generated 1 tokens"), std::string::npos) << numeric.out;
  const Ran xhigh = run(bin + " run -n 1 -p hi --effort xhigh -m " + dir);
  EXPECT_EQ(xhigh.rc, 1);
  EXPECT_NE(xhigh.out.find("'xhigh' is not a level of the v4.1 chat encoder (its levels: low, high, max, 1-100)"),
            std::string::npos)
      << xhigh.out;
  EXPECT_EQ(xhigh.out.find("generated"), std::string::npos) << xhigh.out;

  const std::string completion =
      R"('{"completion":"ok\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke name=\"f\">\n<｜DSML｜ parameter name=\"x\" )"
      R"(string=\"false\">1</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n</｜DSML｜ calls><｜end▁of▁sentence｜>",)"
      R"("thinking_mode":"chat","revision":"v4.1"}')";
  // printf, not echo: sh's echo would turn the JSON's \n escapes into newlines.
  const Ran parsed = run("printf '%s\\n' " + completion + " | " + bin + " parse-completion");
  EXPECT_EQ(parsed.rc, 0) << parsed.out;
  EXPECT_NE(parsed.out.find(R"("tool_calls":[{"type":"function","function":{"name":"f","arguments":"{\"x\": 1}"}}])"),
            std::string::npos)
      << parsed.out;
}

}  // namespace
}  // namespace dsv4::cli

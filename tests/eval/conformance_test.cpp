// dsv4 score against the official references in ../shared/fixtures (fixture README: end-to-end
// logits are compared statistically, per layer teacher-forced).
#include "eval/conformance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "io/test_tmp_dir.h"
#include "test_paths.h"

namespace dsv4::eval {

namespace {

nlohmann::json score(const std::string& fixture, int64_t chunk, bool reference_kernels = false) {
  auto r = score_against_reference({.model_dir = test::fixture_dir(fixture) + "/checkpoint",
                                    .reference_path = test::fixture_dir(fixture) + "/reference.safetensors",
                                    .chunk = chunk,
                                    .reference_kernels = reference_kernels});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : nlohmann::json::object();
}

}  // namespace

// End-to-end logits (prefill, and P-token prefill + decode) and the MTP block meet the
// emulating-engine tolerances of reference.json on every shared fixture.
TEST(Conformance, EndToEndAndMtpWithinTolerance) {
  for (const char* fixture : {"tiny", "tiny-c"}) {
    const auto r = score(fixture, 0);
    ASSERT_TRUE(r.contains("prefill") && r.contains("decode") && r.contains("mtp")) << fixture;
    EXPECT_TRUE(r["prefill"]["pass"].get<bool>()) << fixture << r["prefill"].dump();
    EXPECT_TRUE(r["decode"]["pass"].get<bool>()) << fixture << r["decode"].dump();
    EXPECT_TRUE(r["mtp"]["pass"].get<bool>()) << fixture << r["mtp"].dump();
    EXPECT_LE(r["mtp"]["median_row_max_abs"].get<double>(), 1e-4) << fixture;   // most rows bit-exact
  }
}

// Teacher-forced per layer: the SWA and HCA blocks of both fixtures, the first CSA block of
// fixtures/tiny and every block of fixtures/tiny-b-layers (other shapes: hidden 384, head_dim 256,
// 16 experts) meet the bitwise thresholds. tiny-b-layers' block 4 was at 0.448 until the mHC
// sigmoid used CUDA's expf rounding (kernels/cpu/cuda_exp.h): a stream sum of token 4 sat exactly
// on a bf16 tie. The CSA blocks of fixtures/tiny-c miss them because of CUDA's expf in the
// compressor's softmax, whose ex2.approx part is not reproduced (fed the reference's compressed
// entries they reach 0.966 and 0.989; see the issue note); with the compressor's projections in
// the GPU's GEMM order (SumOrder::two_slices) they are at 0.875 and 0.852, which the floor below
// holds (0.776 and 0.764 in the canonical order).
TEST(Conformance, TeacherForcedLayersWithinTolerance) {
  const std::map<std::string, std::vector<int>> passing = {
      {"tiny", {0, 1, 2}}, {"tiny-c", {0, 2}}, {"tiny-b-layers", {0, 1, 2, 3, 4, 5}}};
  for (const auto& [fixture, layers] : passing) {
    const auto r = score(fixture, 0);
    ASSERT_TRUE(r.contains("teacher_forced")) << fixture;
    for (int layer : layers)
      EXPECT_TRUE(r["teacher_forced"][layer]["pass"].get<bool>()) << fixture << r["teacher_forced"][layer].dump();
    if (fixture == "tiny-c") {
      for (int layer : {1, 3})
        EXPECT_GE(r["teacher_forced"][layer]["elements_bitwise_equal"].get<double>(), 0.85)
            << r["teacher_forced"][layer].dump();
    }
  }
}

// The scalar reference matmul (the debugging path, `--reference-kernels`) meets the same tolerances.
TEST(Conformance, ReferenceKernelsWithinTolerance) {
  const auto r = score("tiny", 0, /*reference_kernels=*/true);
  EXPECT_EQ(r["kernels"], "reference");
  EXPECT_TRUE(r["prefill"]["pass"].get<bool>()) << r["prefill"].dump();
  EXPECT_TRUE(r["decode"]["pass"].get<bool>()) << r["decode"].dump();
  EXPECT_TRUE(r["mtp"]["pass"].get<bool>()) << r["mtp"].dump();
}

// Splitting the prompt (chunks of 7, token by token) gives the same figures as one shot.
TEST(Conformance, ChunkedPrefillGivesIdenticalReport) {
  const auto whole = score("tiny", 0);
  for (int64_t chunk : {7, 1}) {
    const auto split = score("tiny", chunk);
    EXPECT_EQ(split["prefill"], whole["prefill"]) << "chunk " << chunk;
    EXPECT_EQ(split["decode"], whole["decode"]) << "chunk " << chunk;
    EXPECT_EQ(split["teacher_forced"], whole["teacher_forced"]) << "chunk " << chunk;
  }
}

// --dump-layer: the watched block's intermediates land in a safetensors file keyed by position,
// next to the reference's own output rows, and recording them changes nothing in the report.
TEST(Conformance, BlockDumpRecordsTheWatchedBlock) {
  test::TempDir dir;
  const std::string fx = test::fixture_dir("tiny-b-layers");
  ScoreOptions opt{.model_dir = fx + "/checkpoint", .reference_path = fx + "/reference.safetensors"};
  const auto plain = score_against_reference(opt);
  opt.dump_layer = 4;
  opt.dump_pos0 = 0;
  opt.dump_pos1 = 8;
  opt.dump_path = dir / "layer4.safetensors";
  const auto dumped = score_against_reference(opt);
  ASSERT_TRUE(plain.ok() && dumped.ok());
  EXPECT_EQ(plain.value(), dumped.value());

  auto f = io::open_safetensors(opt.dump_path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  std::map<std::string, const io::TensorEntry*> t;
  for (const auto& e : f->header.tensors) t[e.name] = &e;
  for (const char* name : {"in", "attn.u_sum", "attn.x", "attn.q", "attn.kv", "comp.kvp", "comp.score", "comp.pooled",
                           "comp.entry", "idx.entry", "attn.selected", "attn.o", "attn.out", "ffn.out", "out", "ref.out"})
    ASSERT_TRUE(t.count(name) && t.count(std::string(name) + ".positions")) << name;
  EXPECT_EQ(t["out"]->shape, (std::vector<int64_t>{8, 4 * 384}));
  EXPECT_EQ(t["attn.selected"]->shape, (std::vector<int64_t>{8, 32}));   // index_topk, -1 padded
  // Entries are keyed by the position that closes their window: 3 and 7 for entries 0 and 1.
  const auto* pos = reinterpret_cast<const int64_t*>(t["comp.entry.positions"]->data);
  ASSERT_EQ(t["comp.entry"]->shape, (std::vector<int64_t>{2, 256}));
  EXPECT_EQ(pos[0], 3);
  EXPECT_EQ(pos[1], 7);
  // The stream sum that sat exactly on a bf16 tie with libm's expf (-8.78125; fixture README,
  // block 4): token 4, dim 251. With CUDA's expf rounding in the sigmoid it lands one ulp past
  // the tie and rounds like the reference's.
  const auto* u_sum = reinterpret_cast<const float*>(t["attn.u_sum"]->data);
  EXPECT_EQ(u_sum[4 * 384 + 251], std::nextafter(-8.78125f, -9.0f));
  EXPECT_EQ(round_bf16(u_sum[4 * 384 + 251]), -8.8125f);
}

}  // namespace dsv4::eval

namespace dsv4::eval {
namespace {

// A reference file made up for the error paths: the tensors' names, dtypes and shapes are what
// matter, not their values (ids are i % 1000, a one-element I32 holds `value`, floats are 0).
struct RefSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  int32_t value = 0;
};

void write_reference(const std::string& path, const std::vector<RefSpec>& specs) {
  std::vector<io::TensorSpec> tensors;
  for (const auto& s : specs) tensors.push_back({s.name, s.dtype, s.shape});
  Status st = io::write_safetensors(path, tensors, {}, [&](size_t i, std::vector<uint8_t>& out) {
    out.assign(size_t(tensors[i].nbytes()), 0);
    if (specs[i].dtype != DType::i32) return;
    auto* ids = reinterpret_cast<int32_t*>(out.data());
    const size_t n = out.size() / 4;
    for (size_t k = 0; k < n; ++k) ids[k] = n == 1 ? specs[i].value : int32_t(k % 1000);
  });
  ASSERT_TRUE(st.ok()) << st.to_string();
}

// fixtures/tiny: vocab 1024, 4 layers, hc_mult 4, hidden 256; a 12-token reference.
std::vector<RefSpec> valid_reference() {
  return {{"tokens", DType::i32, {12}},
          {"prefill_logits", DType::f32, {12, 1024}},
          {"decode_prefix_len", DType::i32, {1}, 5},
          {"decode_logits", DType::f32, {7, 1024}},
          {"prefill_hidden", DType::bf16, {5, 12, 4, 256}},
          {"mtp_logits", DType::f32, {11, 1024}}};
}

Result<nlohmann::json> score_file(const std::string& path) {
  return score_against_reference({.model_dir = test::fixture_dir("tiny") + "/checkpoint", .reference_path = path});
}

}  // namespace

// Bad reference files get an error naming the tensor, never a crash or an out-of-bounds read
// (the ASan run of the suite checks the latter).
TEST(Conformance, MalformedReferencesAreRefused) {
  test::TempDir dir;
  const std::string ref = dir / "reference.safetensors";
  write_reference(ref, valid_reference());
  auto ok = score_file(ref);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  // No reference.json beside it: figures, but no tolerances, so no pass.
  EXPECT_FALSE((*ok)["pass"].get<bool>());
  EXPECT_EQ((*ok)["prefill"]["tolerances"], "missing");
  EXPECT_FALSE((*ok)["teacher_forced"][0]["pass"].get<bool>());

  struct Case { const char* tensor; RefSpec replacement; const char* says; };
  const Case cases[] = {
      {"tokens", {"tokens", DType::f32, {12}}, "'tokens' has dtype F32, expected I32"},
      {"tokens", {"tokens", DType::i32, {1, 12}}, "'tokens' must have 1 non-empty"},
      {"tokens", {"tokens", DType::i32, {0}}, "'tokens' must have 1 non-empty"},
      {"tokens", {"tokens", DType::i32, {1}, 5000}, "token id out of"},
      {"prefill_logits", {"prefill_logits", DType::i32, {12, 1024}}, "'prefill_logits' has dtype I32"},
      {"prefill_logits", {"prefill_logits", DType::f32, {11, 1024}}, "prefill_logits shape"},
      {"prefill_hidden", {"prefill_hidden", DType::bf16, {5, 13, 4, 256}}, "prefill_hidden must be"},
      {"prefill_hidden", {"prefill_hidden", DType::f32, {5, 12, 4, 256}}, "prefill_hidden must be"},
      {"prefill_hidden", {"prefill_hidden", DType::bf16, {5, 12, 4}}, "'prefill_hidden' must have 4"},
      {"decode_prefix_len", {"decode_prefix_len", DType::f32, {1}}, "'decode_prefix_len' has dtype F32"},
      {"decode_prefix_len", {"decode_prefix_len", DType::i32, {1}, 6}, "decode reference tensors are inconsistent"},
      {"mtp_logits", {"mtp_logits", DType::f32, {12, 1024}}, "mtp_logits must be"},
      {"mtp_logits", {"mtp_logits", DType::f32, {11, 1000}}, "mtp_logits must be"},
  };
  for (const Case& c : cases) {
    auto specs = valid_reference();
    for (auto& s : specs)
      if (s.name == c.tensor) s = c.replacement;
    write_reference(ref, specs);
    auto r = score_file(ref);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.status().to_string().find(c.says), std::string::npos) << r.status().to_string();
  }

  // A reference.json whose tolerances have the wrong types is an error too.
  write_reference(ref, valid_reference());
  for (const char* json : {"[1, 2]", "{\"suggested_tolerances\": 3}",
                           "{\"suggested_tolerances\": {\"emulating_engine\": {\"mean_abs\": \"0.1\"}}}",
                           "{\"suggested_tolerances\": {\"teacher_forced_per_layer\": []}}", "{"}) {
    std::ofstream(dir / "reference.json") << json;
    auto r = score_file(ref);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), StatusCode::corrupt_data) << json;
  }
}

}  // namespace dsv4::eval

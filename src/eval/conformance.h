// `dsv4 score`: checks the engine against a reference produced by DeepSeek's official code, in
// the format of ../shared/fixtures/*/reference.safetensors (+ reference.json tolerances).
//
// Official FP8 numerics are chaotic on random weights, so the tight check is per layer
// (teacher-forced on the reference's own hidden streams) and end-to-end logits are compared
// statistically (fixture README).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace dsv4::eval {

struct ScoreOptions {
  std::string model_dir;
  std::string reference_path;    // reference.safetensors; tolerances from reference.json beside it
  int64_t chunk = 0;             // prefill chunk size; 0 = whole prompt at once, 1 = token by token
  bool reference_kernels = false;  // scalar reference matmul instead of the dispatched SIMD one
};

// Runs every available check and returns the report: {"teacher_forced": [...], "prefill": {...},
// "decode": {...}, "mtp": {...}, "pass": bool, ...}.
Result<nlohmann::json> score_against_reference(const ScoreOptions& options);

}  // namespace dsv4::eval

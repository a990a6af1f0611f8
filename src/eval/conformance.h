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
#include "runtime/mpi_world.h"

namespace dsv4::eval {

struct ScoreOptions {
  std::string model_dir;
  std::string reference_path;    // reference.safetensors; tolerances from reference.json beside it
  int64_t chunk = 0;             // prefill chunk size; 0 = whole prompt at once, 1 = token by token
  bool reference_kernels = false;  // scalar reference matmul instead of the dispatched SIMD one
  // Diagnostic: the teacher-forced run of block dump_layer (if >= 0) records its intermediates at
  // positions [dump_pos0, dump_pos1), with the reference's output rows as `ref.out`, into
  // dump_path (model/block_probe.h).
  int64_t dump_layer = -1;
  int64_t dump_pos0 = 0, dump_pos1 = 0;
  std::string dump_path = {};
  // Under mpirun (runtime/mpi_world.h): every rank runs the whole score with its share of the
  // routed experts (runtime::load_model_on_world); the report is the same on each.
  const runtime::World* world = nullptr;
  // --numa (runtime/numa_placement.h): the replicated tensors read from a copy on this process's
  // NUMA node; the report is the same, bit for bit.
  bool numa = false;
};

// Runs every available check and returns the report: {"teacher_forced": [...], "prefill": {...},
// "decode": {...}, "mtp": {...}, "pass": bool, ...}.
Result<nlohmann::json> score_against_reference(const ScoreOptions& options);

}  // namespace dsv4::eval

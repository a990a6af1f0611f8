// The engine boundary used by the CLI and the server: a loaded model plus per-sequence state.
// Callers never see tensors or layers; they append tokens to sequences and read logits.
//
// Thread-safety: an Engine is used from one inference thread at a time (the scheduler's).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/config.h"
#include "model/step_times.h"

namespace dsv4::runtime {

struct EngineOptions {
  int threads = 0;                // 0 = all cores (OpenMP default)
  bool reference_kernels = false; // scalar reference kernels (debugging, conformance)
  int64_t max_context = 0;        // 0 = max_position_embeddings of the config
  // Fault every weight page in at load (io::MappedFile::populate) when the shards fit in physical
  // memory: load then takes as long as reading the checkpoint, and no decode step stalls on
  // first-touch page faults. A larger model is left to page in on demand (its pages must come
  // and go anyway).
  bool populate_weights = true;
  // When populating, re-read the shards that the page cache holds in 4 KiB pieces so that they
  // are mapped with 2 MiB pages (io::Checkpoint::populate): fewer TLB misses, measured 12-18 ->
  // 24-27 tok/s on a Flash-shaped model. Costs one disk read of those shards (once: the page
  // cache keeps the 2 MiB folios for later loads). False leaves the page cache as it is.
  bool reread_small_pages = true;
};

// Opaque per-sequence state: sliding-window KV, compressed entries, compressor and indexer
// state (spec §5.13), and the number of tokens consumed.
class Sequence {
 public:
  virtual ~Sequence() = default;
  virtual int64_t position() const = 0;            // tokens consumed so far
  virtual std::unique_ptr<Sequence> clone() const = 0;  // deep copy (prefix reuse, snapshots)
  virtual size_t memory_bytes() const = 0;
  // Sizes the state for `positions` tokens up front: steps up to there then never grow it (the
  // only allocation a warm decode step can otherwise make). Optional; no effect on results.
  virtual void reserve(int64_t positions) {}
};

class Engine {
 public:
  virtual ~Engine() = default;
  static Result<std::unique_ptr<Engine>> load(const std::string& model_dir, const EngineOptions& options);

  virtual const io::ModelConfig& config() const = 0;
  virtual int64_t max_context() const = 0;
  virtual std::unique_ptr<Sequence> new_sequence() const = 0;

  // One forward step over several sequences at once (continuous batching). Sequence i consumes
  // tokens[i] (length >= 1) at its current position; the logits after its last token are written
  // to logits[i * vocab_size .. (i+1) * vocab_size). Every sequence must be distinct.
  // Errors: invalid token id, context overflow (the sequences are then left unchanged).
  virtual Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
                      float* logits) = 0;

  // FOR BENCHMARKS ONLY (dsv4 bench --synthetic-context): puts a fresh sequence at position
  // `depth` with pseudo-random state of the right shapes (model::fill_synthetic_state), so that
  // decoding at a long context can be timed without prefilling it. Logits from there on are
  // meaningless. Errors: the sequence is not fresh, depth exceeds the context limit.
  virtual Status fill_synthetic(Sequence& seq, int64_t depth, uint64_t seed) {
    return Status::unsupported("fill_synthetic: not supported by this engine");
  }

  // FOR BENCHMARKS ONLY (dsv4 bench's decode breakdown): from this call on, every step adds its
  // wall time by part to *times (nullptr stops it). Default: not measured.
  virtual void time_steps(model::StepTimes* times) {}

  // Convenience for a single sequence.
  Status step(Sequence& seq, std::span<const int32_t> tokens, float* logits) {
    Sequence* s = &seq;
    return step(std::span<Sequence* const>(&s, 1), std::span<const std::span<const int32_t>>(&tokens, 1), logits);
  }
};

}  // namespace dsv4::runtime

// The engine boundary used by the CLI and the server: a loaded model plus per-sequence state.
// Callers never see tensors or layers; they append tokens to sequences and read logits.
//
// Thread-safety: an Engine is used from one inference thread at a time (the scheduler's).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/config.h"
#include "model/step_times.h"

namespace dsv4::model {
struct Model;
}

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
  // Use the checkpoint's drafter (DSpark, or the preview's MTP block) for speculative decoding
  // (addendum §A5) when it has one. False loads it but never runs it: max_draft_tokens() is 0.
  bool speculative = true;
  // --numa (runtime/numa_placement.h): copy every tensor but the routed experts into memory of the
  // NUMA node this process is bound to (refused when its CPUs span several nodes), then populate
  // the rest as above (without the 2 MiB re-read).
  bool numa = false;
};

// How a step feeds one sequence's tokens.
enum class Feed : uint8_t {
  append,  // the tokens are final; logits after the last one
  // Speculative verification (addendum §A5.2 step 2): logits after every token, and the chunk
  // stays open until commit() keeps a prefix of it. At most sliding_window tokens (the chunk's
  // ring slots must be distinct; a round feeds max_draft_tokens() + 1).
  verify,
};

// Chooses each draft token from the drafter's logits z_i (addendum §A4.10): the caller's
// sampler, so that it knows the distribution q_i the token was drawn from (§A5.2 condition i).
class DraftChooser {
 public:
  virtual ~DraftChooser() = default;
  // z: the vocab_size logits of draft slot i. Returns the token.
  virtual int32_t choose(int i, std::span<const float> z) = 0;
};

struct DraftOptions {
  int max_tokens = 0;                // at most this many drafts (<= max_draft_tokens())
  // DSpark only (addendum §A5.2 step 1): stop before the first slot whose confidence
  // sigmoid(c_i) is below this; <= 0 keeps every slot. It changes speed, never output.
  float confidence_threshold = 0.0f;
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
  // An engine over a model loaded by the caller (load() = model::load_model, populate, open()):
  // an expert-parallel rank loads and populates its share itself (runtime/world_engine.h).
  static std::unique_ptr<Engine> open(std::unique_ptr<model::Model> model, const EngineOptions& options);

  virtual const io::ModelConfig& config() const = 0;
  virtual int64_t max_context() const = 0;
  virtual std::unique_ptr<Sequence> new_sequence() const = 0;

  // One forward step over several sequences at once (continuous batching). Sequence i consumes
  // tokens[i] (length >= 1) at its current position, as feeds[i] says (empty: all append). The
  // logits are written in sequence order, vocab_size floats per row: one row (after the last
  // token) for an append feed, one per token for a verify feed. Every sequence must be distinct.
  // Errors: invalid token id, context overflow, an open verify chunk, a verify feed longer than
  // the sliding window (the sequences are then left unchanged).
  virtual Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
                      std::span<const Feed> feeds, float* logits) = 0;
  Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens, float* logits) {
    return step(seqs, tokens, {}, logits);
  }

  // Speculative decoding (addendum §A5). The number of tokens one draft() proposes at most:
  // the DSpark block size minus the anchor (5), 1 for the preview's MTP block, 0 without a
  // drafter or with EngineOptions::speculative false.
  virtual int max_draft_tokens() const { return 0; }

  // Proposes up to options.max_tokens tokens to follow `anchor`, the token the sequence will
  // consume next (sampled, not fed yet). tokens[i] is chosen by `chooser` from the logits of
  // slot i, which are left in logits[i * vocab_size ..].
  // Returns how many were proposed (0 when the confidence stops the first slot). The sequence's
  // target state is unchanged; its drafter state absorbs the committed positions.
  // Errors: no drafter, a verify chunk not committed, anchor outside the vocabulary.
  virtual Result<int> draft(Sequence& seq, int32_t anchor, const DraftOptions& options, DraftChooser& chooser,
                            int32_t* tokens, float* logits) {
    return Status::unsupported("draft: this engine has no drafter");
  }

  // Ends the sequence's open verify chunk, keeping its first `keep` tokens (1 <= keep <= chunk
  // length): the state becomes bit for bit that of a sequence that consumed only those
  // (addendum §A5.5). Errors: no open chunk, keep out of range.
  virtual Status commit(Sequence& seq, int64_t keep) {
    return Status::unsupported("commit: this engine has no verify chunks");
  }

  // The prefix cache's disk store (runtime/prefix_store.h): a sequence's whole state (the
  // drafter's included) as bytes, and a new sequence from them. save_sequence only reads `seq`
  // and the config, so it may run on a thread of its own while the engine steps other
  // sequences. load_sequence checks every count and length against this engine's model and
  // drafter, and refuses (corrupt_data) bytes that do not fit them.
  // Errors: unsupported (this engine cannot), invalid_argument (an open verify chunk).
  virtual Status save_sequence(const Sequence& seq, std::vector<uint8_t>* out) const {
    return Status::unsupported("save_sequence: not supported by this engine");
  }
  virtual Result<std::unique_ptr<Sequence>> load_sequence(std::span<const uint8_t> bytes) const {
    return Status::unsupported("load_sequence: not supported by this engine");
  }

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

  // FOR BENCHMARKS ONLY (dsv4 bench, --numa): the bytes of this process's weights present in
  // memory, per NUMA node id (io::Checkpoint::resident_bytes_per_node). Empty: not known.
  virtual std::map<int, uint64_t> weight_bytes_per_node() const { return {}; }

  // Convenience for a single sequence.
  Status step(Sequence& seq, std::span<const int32_t> tokens, float* logits) {
    Sequence* s = &seq;
    return step(std::span<Sequence* const>(&s, 1), std::span<const std::span<const int32_t>>(&tokens, 1), {}, logits);
  }
};

}  // namespace dsv4::runtime

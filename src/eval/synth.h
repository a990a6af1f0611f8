// `dsv4 synth`: random-weight checkpoints in the exact official on-disk format (spec §2, §3), for
// tests and benchmarks when the real weights are not at hand. The tensor list comes from
// io::expected_tensors, so synth and the loader cannot disagree about the inventory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "io/config.h"
#include "io/safetensors.h"

namespace dsv4::eval {

// The preview's shapes (tiny = shared fixture `tiny`), and the official releases with their DSpark
// drafter (addendum §A1): flash_0731 / pro_0813 at full size, tiny_0731 / tiny_0813 with tiny's
// dimensions and the release's layer schedule, for tests. flash_v41: DeepSeek-V4.1-Flash (v4.1
// §2.1, §3); tiny_v41: its schedule with tiny dimensions.
enum class SynthPreset { tiny, flash, pro, tiny_0731, tiny_0813, flash_0731, pro_0813, tiny_v41, flash_v41 };
// "tiny" | "flash" | "pro" | "tiny-0731" | "tiny-0813" | "flash-0731" | "pro-0813" | "tiny-v41" |
// "flash-v41"; false if unknown.
bool parse_synth_preset(std::string_view name, SynthPreset* out);

struct SynthOptions {
  SynthPreset preset = SynthPreset::tiny;
  int64_t layers = 0;    // num_hidden_layers override (0 = preset value)
  int64_t experts = 0;   // n_routed_experts override (0 = preset value)
  int64_t vocab = 0;     // vocab_size override (0 = preset value)
  int64_t engram_vocab = 0;   // V4.1 presets: engram_vocab_size override, which sizes the Engram tables (0 = preset)
  // "key=value" edits of config.json applied last, in order (like the fixture generator's
  // overrides, e.g. "head_dim=512"): the key must already exist ("a.b" reaches into an object),
  // the value is JSON ("[4,4,0]", "0.5"), or a plain string if it does not parse as JSON.
  std::vector<std::string> set;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = 4ull << 30;   // a shard never exceeds this unless one tensor does
  // > 0: the main layers' routed experts in shards of their own, per group [E·g/G, E·(g+1)/G) of
  // G groups (rank g's share under `mpirun -np G`), so that an expert-parallel rank maps only its
  // group's shards besides the shared ones (docs/scale-out.md). 0: inventory order throughout.
  int64_t expert_groups = 0;
  std::string tokenizer_dir;               // tokenizer.json + tokenizer_config.json copied from here; "" = none
  bool progress = true;                    // one line per shard on stderr
  bool overwrite = false;                  // replace *.safetensors already in the directory
  bool remember_verified = true;           // record the written files in the verification cache
};

struct SynthReport {
  size_t tensors = 0;
  size_t shards = 0;
  uint64_t bytes = 0;       // tensor bytes (= index metadata.total_size)
  double seconds = 0;
  bool tokenizer_copied = false;
};

// The root config.json text (official key set, spec §2.1) of a preset with the overrides applied:
// --layers keeps the preset's compress_ratios schedule for the first N layers plus the MTP entry
// (spec §2.3), and clamps num_hash_layers to N; --experts clamps num_experts_per_tok. A DSpark
// preset appends its 3 stage entries instead of the MTP entry and taps the last 3 main layers
// (addendum §A2.1; see synth.cpp). The V4.1 presets write V4.1's nested config (synth_config_v41.h).
// Then the `set` edits. Fails if an edit names an unknown key or
// the result does not pass parse_config.
Result<std::string> synth_config_json(const SynthOptions& opt);

// How the bytes of one tensor are drawn (see synth.cpp for the scales and why).
struct SynthRecipe {
  enum class Kind { fp8_normal, e8m0_const, fp4_normal, bf16_normal, f32_normal, expert_ids };
  Kind kind = Kind::f32_normal;
  float mean = 0, stddev = 1;   // bf16_normal / f32_normal
  uint8_t code = 127;           // e8m0_const
  int64_t n_experts = 0;        // expert_ids: values in [0, n_experts), distinct per row
  uint64_t seed = 0;
};
std::vector<SynthRecipe> synth_recipes(const io::ModelConfig& c, const std::vector<io::TensorSpec>& tensors, uint64_t seed);

// Fills bytes [offset, offset + n) of a tensor. The bytes depend only on the recipe and the
// position, never on the thread count or on how the tensor is cut into pieces: every aligned
// kSynthBlock of the tensor has its own generator (a partly requested block is generated whole).
inline constexpr uint64_t kSynthBlock = 1ull << 20;
void synth_fill(const SynthRecipe& r, const io::TensorSpec& t, uint64_t offset, uint8_t* dst, size_t n);

// Writes config.json, generation_config.json, model.safetensors.index.json, the shards
// model-0000K-of-0000N.safetensors, SHA256SUMS and (if available) the tokenizer into `dir`
// (created if needed). Streams: memory use is a few 64 MiB buffers whatever the model size.
Status synth_checkpoint(const SynthOptions& opt, const std::string& dir, SynthReport* report = nullptr);

}  // namespace dsv4::eval

// The root config.json of the V4.1 synth presets (v4.1 §2.1), before the --set edits. Internal
// to eval: synth_config_json (synth.h) is the entry point.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "eval/synth.h"
#include "io/config.h"

namespace dsv4::eval {

bool is_v41_preset(SynthPreset p);

// The released key set and values (flash-v41), or tiny dimensions with the released schedule
// (tiny-v41). --layers keeps the schedule of the first N layers: the source and Engram lists keep
// their ids below N (the candidate source becomes -1, "off", when it is not among them), and the
// DSpark drafter keeps its 3 stages and taps the last 3 main layers. --experts sets the backbone's
// experts and clamps the stages' (128) and both top-k; --engram-vocab sets engram_vocab_size, and
// engram_num_embeddings follows from it by the prime rule (v4.1 §5.3.2).
// REQUIRES: the overrides are in range (synth_config_json checks them).
nlohmann::ordered_json synth_v41_config(const SynthOptions& opt);

// The bytes of the Engram token map file (model/engram.h kEngramTokenMapFile) of a V4.1 synthetic
// checkpoint: a tokenizer-free stand-in for v4.1 §5.3.1's map, ids below the compressed vocabulary
// numbered as themselves and every later id folded onto them (id mod size), so that it is a
// first-appearance numbering of exactly engram_compressed_vocab_size ids with the pad mapped to
// itself. Little-endian int32 per vocabulary id.
std::string synth_engram_token_map(const io::ModelConfig& c);

}  // namespace dsv4::eval

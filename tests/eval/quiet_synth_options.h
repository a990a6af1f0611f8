// SynthOptions for tests: no progress lines, no tokenizer copy, and the user's verification
// cache left alone.
#pragma once

#include "eval/synth.h"

namespace dsv4::test {

inline eval::SynthOptions quiet_synth_options(eval::SynthPreset preset) {
  eval::SynthOptions o;
  o.preset = preset;
  o.progress = false;
  o.remember_verified = false;
  return o;
}

}  // namespace dsv4::test

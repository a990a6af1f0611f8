// SynthOptions for tests: no progress lines, no tokenizer copy, and the user's verification
// cache left alone.
#pragma once

#include "io/synth.h"

namespace dsv4::test {

inline io::SynthOptions quiet_synth_options(io::SynthPreset preset) {
  io::SynthOptions o;
  o.preset = preset;
  o.progress = false;
  o.copy_tokenizer = false;
  o.remember_verified = false;
  return o;
}

}  // namespace dsv4::test

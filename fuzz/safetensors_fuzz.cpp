// libFuzzer target for the checkpoint parsers (built and run by tests/scripts/fuzz_safetensors.sh).
// Input = a safetensors image. Target 1: parse_safetensors on the whole image; on success every
// tensor view must lie inside the input. Target 2: parse_config on the header bytes, so the same
// corpus (shard headers, config.json wrapped as a header) drives the config parser.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "io/config.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv4::io;
  auto h = parse_safetensors(data, size, "fuzz.safetensors");
  if (h.ok()) {
    for (const auto& t : h->tensors) {
      // A parsed view outside the input would be an out-of-bounds read later: fail loudly.
      if (t.data < data || t.end < t.begin || t.nbytes() > size || t.data + t.nbytes() > data + size) std::abort();
      volatile uint8_t sink = 0;
      if (t.nbytes() > 0) sink = uint8_t(t.data[0] ^ t.data[t.nbytes() - 1]);   // ASan checks both ends
      (void)sink;
    }
  } else if (h.status().message().rfind("fuzz.safetensors: ", 0) != 0) {
    std::abort();   // every error names the file
  }

  // Header bytes (after the 8-byte length, clamped to the input) as config.json text.
  if (size >= 8) {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | data[i];
    const size_t n = size_t(hlen < size - 8 ? hlen : size - 8);
    auto c = parse_config(std::string(reinterpret_cast<const char*>(data + 8), n), "fuzz config");
    if (c.ok() && int64_t(c->compress_ratios.size()) != c->num_hidden_layers + c->num_nextn_predict_layers) std::abort();
  }
  return 0;
}

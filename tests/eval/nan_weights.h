// Writes NaN over one bf16 tensor of a checkpoint on disk, for the tests that a broken
// checkpoint stops a request with an error instead of producing tokens (issue #15).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/safetensors.h"

namespace dsv4::test {

// Sets every element of the bf16 tensor `name` (in whichever shard of `dir` holds it) to NaN.
inline Status write_nan_weights(const std::string& dir, const std::string& name) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    uint64_t offset = 0, bytes = 0;
    {
      auto f = io::open_safetensors(e.path().string());
      if (!f.ok()) return f.status();
      for (const io::TensorEntry& t : f->header.tensors) {
        if (t.name != name) continue;
        if (t.dtype != DType::bf16) return Status::invalid_argument(name + " is not bf16");
        offset = f->header.data_offset + t.begin;
        bytes = t.nbytes();
      }
    }
    if (bytes == 0) continue;
    const uint16_t nan_bf16 = 0x7fc0;
    std::vector<uint16_t> nans(bytes / 2, nan_bf16);
    std::fstream out(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(std::streamoff(offset));
    out.write(reinterpret_cast<const char*>(nans.data()), std::streamsize(bytes));
    return out ? Status::ok_status() : Status::io_error(e.path().string() + ": write failed");
  }
  return Status::not_found(name + ": no such tensor in " + dir);
}

}  // namespace dsv4::test

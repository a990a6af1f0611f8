// safetensors container: 8-byte little-endian header length, a JSON header mapping tensor names
// to {dtype, shape, data_offsets}, then the data section. Every offset is checked against the
// file size before any tensor is touched, so a corrupt file yields a Status, never a bad read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "io/mapped_file.h"

namespace dsv4::io {

// Largest header accepted: real V4 shards have ~0.2 MB headers; anything near this is corrupt.
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

// A header entry. Checkpoint::open turns dtype and shape into the inventory's element type and
// shape (FP4: fp4_e2m1 [rows, cols] for I8 [rows, cols/2]); nbytes and data stay as stored.
struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;   // byte offset inside the data section
  uint64_t end = 0;
  const uint8_t* data = nullptr;   // set once the data section is known to hold [begin, end)
  std::string file;                // shard path, for messages
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;               // in header order
  std::map<std::string, std::string> metadata;    // "__metadata__"
  uint64_t data_offset = 0;                       // 8 + header length
};

// Parses and validates a whole safetensors image held in memory (the fuzzing entry point).
// `name` is used in messages. On success every TensorEntry::data points into `bytes`.
Result<SafetensorsHeader> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name);

// A mapped shard with its parsed header.
struct SafetensorsFile {
  std::unique_ptr<MappedFile> file;
  SafetensorsHeader header;
};
Result<SafetensorsFile> open_safetensors(const std::string& path);

// A tensor's name, element type and shape in elements.
struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;
};

// Writes a safetensors file (used by `dsv4 synth` and tests), streaming one tensor at a time so
// multi-GB shards never sit in memory whole. Every dtype must be one that headers spell (fp4_e2m1
// is written in its I8 form, io::stored_form). `produce(i, out)` fills the bytes of tensor i; their
// count must equal nbytes(). The data section holds the tensors largest element size first, then
// by name (as the safetensors library lays them out), so each starts aligned to its element size;
// `produce` and `fill` are called in that order.
Status write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         const std::function<void(size_t, std::vector<uint8_t>&)>& produce);

// Streaming variant for tensors too large to hold whole (a Flash embedding is 1 GB):
// `fill(i, offset, dst, n)` writes bytes [offset, offset + n) of tensor i into dst (any offset; the
// pieces of a tensor come in order). Memory use is two buffers of `chunk_bytes`: one is written
// while the next is filled. `observe`, if set, sees every byte of the file in order (e.g. for a sha256).
using TensorChunkFill = std::function<void(size_t index, uint64_t offset, uint8_t* dst, size_t n)>;
using ByteObserver = std::function<void(const uint8_t* bytes, size_t n)>;
Status write_safetensors_chunked(const std::string& path, const std::vector<TensorSpec>& tensors,
                                 const std::map<std::string, std::string>& metadata, const TensorChunkFill& fill,
                                 const ByteObserver& observe = nullptr, uint64_t chunk_bytes = 64ull << 20);

}  // namespace dsv4::io

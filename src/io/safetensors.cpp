#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>

namespace dsv4::io {

using nlohmann::json;

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t TensorSpec::nbytes() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return dtype_bytes(dtype, n);
}

namespace {

// numel * elem_size without overflow; false if it would not fit in 63 bits.
bool checked_nbytes(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  unsigned __int128 n = elem;
  for (int64_t d : shape) {
    n *= uint64_t(d);
    if (n > (unsigned __int128)(INT64_MAX)) return false;
  }
  *out = uint64_t(n);
  return true;
}

Status parse_entry(const std::string& name, const json& v, uint64_t data_size, TensorEntry* t) {
  const std::string where = "tensor '" + name + "'";
  if (!v.is_object()) return Status::corrupt_data(where + ": header entry is not an object");
  auto dt = v.find("dtype");
  auto sh = v.find("shape");
  auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string()) return Status::corrupt_data(where + ": missing dtype");
  if (sh == v.end() || !sh->is_array()) return Status::corrupt_data(where + ": missing shape");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    return Status::corrupt_data(where + ": missing or malformed data_offsets");
  t->name = name;
  const std::string dts = dt->get<std::string>();
  if (!parse_dtype(dts, &t->dtype)) return Status::unsupported(where + ": unknown dtype '" + dts + "'");
  if (sh->size() > 8) return Status::corrupt_data(where + ": too many dimensions");
  t->shape.clear();
  for (const auto& d : *sh) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      return Status::corrupt_data(where + ": shape entries must be non-negative integers");
    t->shape.push_back(d.get<int64_t>());
  }
  for (const auto& o : *off) {
    if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
      return Status::corrupt_data(where + ": data_offsets must be non-negative integers");
  }
  t->begin = (*off)[0].get<uint64_t>();
  t->end = (*off)[1].get<uint64_t>();
  if (t->begin > t->end) return Status::corrupt_data(where + ": data_offsets begin > end");
  if (t->end > data_size)
    return Status::corrupt_data(where + ": data_offsets [" + std::to_string(t->begin) + ", " +
                                std::to_string(t->end) + ") beyond the data section (" +
                                std::to_string(data_size) + " bytes; file truncated?)");
  uint64_t expect = 0;
  if (!checked_nbytes(t->shape, dtype_bytes(t->dtype, 1), &expect))   // header dtypes are whole bytes
    return Status::corrupt_data(where + ": shape too large");
  if (expect != t->nbytes())
    return Status::corrupt_data(where + ": " + std::to_string(t->nbytes()) + " bytes in file, shape and dtype need " +
                                std::to_string(expect));
  return Status::ok_status();
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size < 8) return Status::corrupt_data(name + ": file too short for a safetensors header (" +
                                            std::to_string(size) + " bytes)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  if (hlen > kMaxSafetensorsHeader)
    return Status::corrupt_data(name + ": header length " + std::to_string(hlen) + " is absurd");
  if (hlen > size - 8)
    return Status::corrupt_data(name + ": header length " + std::to_string(hlen) +
                                " exceeds the file size " + std::to_string(size));
  const char* hbegin = reinterpret_cast<const char*>(bytes + 8);
  json j = json::parse(hbegin, hbegin + hlen, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::corrupt_data(name + ": header is not valid JSON");
  if (!j.is_object()) return Status::corrupt_data(name + ": header is not a JSON object");

  SafetensorsHeader h;
  h.data_offset = 8 + hlen;
  const uint64_t data_size = size - h.data_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) return Status::corrupt_data(name + ": __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) return Status::corrupt_data(name + ": __metadata__ values must be strings");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    TensorEntry t;
    Status s = parse_entry(it.key(), it.value(), data_size, &t);
    if (!s.ok()) return s.with_context(name);
    t.data = bytes + h.data_offset + t.begin;
    t.file = name;
    h.tensors.push_back(std::move(t));
  }
  // Tensors must not overlap (a corrupt offset table could alias two weights).
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : h.tensors) if (t.nbytes() > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorEntry* a, const TensorEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      return Status::corrupt_data(name + ": tensors '" + by_offset[i - 1]->name + "' and '" +
                                  by_offset[i]->name + "' overlap");
  }
  return h;
}

Result<SafetensorsFile> open_safetensors(const std::string& path) {
  SafetensorsFile f;
  DSV4_ASSIGN_OR_RETURN(f.file, MappedFile::open(path));
  DSV4_ASSIGN_OR_RETURN(f.header, parse_safetensors(f.file->data(), f.file->size(), path));
  return f;
}

namespace {

// The header text of a file holding `tensors` back to back, padded so the data section starts
// 8-aligned.
// The order of the tensors' bytes in the data section: by element size, largest first, then by
// name, as the safetensors library writes them (and the official checkpoints are laid out). With
// the header padded to a multiple of 8 bytes, every tensor then starts aligned to its element size.
std::vector<size_t> data_order(const std::vector<TensorSpec>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t sa = dtype_align(tensors[a].dtype), sb = dtype_align(tensors[b].dtype);
    return sa != sb ? sa > sb : tensors[a].name < tensors[b].name;
  });
  return order;
}

std::string header_text(const std::vector<TensorSpec>& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i : data_order(tensors)) {
    const TensorSpec& t = tensors[i];
    DType spelled;
    DSV4_CHECK(parse_dtype(dtype_name(t.dtype), &spelled));   // a file no reader could parse otherwise
    const uint64_t n = t.nbytes();
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');
  return text;
}

// Opens `path` and writes the length prefix and header.
Status begin_file(const std::string& path, const std::string& text, std::FILE** out, const ByteObserver& observe) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::io_error(path + ": cannot create: " + std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
    std::fclose(f);
    return Status::io_error(path + ": write failed (disk full?)");
  }
  if (observe) {
    observe(len, 8);
    observe(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }
  *out = f;
  return Status::ok_status();
}

}  // namespace

Status write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         const std::function<void(size_t, std::vector<uint8_t>&)>& produce) {
  std::FILE* f = nullptr;
  DSV4_TRY(begin_file(path, header_text(tensors, metadata), &f, nullptr));
  bool ok = true;
  std::vector<uint8_t> buf;
  for (size_t i : data_order(tensors)) {
    if (!ok) break;
    buf.clear();
    produce(i, buf);
    DSV4_CHECK(buf.size() == tensors[i].nbytes());
    if (!buf.empty()) ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
  }
  if (std::fclose(f) != 0) ok = false;
  if (!ok) return Status::io_error(path + ": write failed (disk full?)");
  return Status::ok_status();
}

Status write_safetensors_chunked(const std::string& path, const std::vector<TensorSpec>& tensors,
                                 const std::map<std::string, std::string>& metadata, const TensorChunkFill& fill,
                                 const ByteObserver& observe, uint64_t chunk_bytes) {
  DSV4_CHECK(chunk_bytes > 0);
  std::FILE* f = nullptr;
  DSV4_TRY(begin_file(path, header_text(tensors, metadata), &f, observe));
  // The data section is one byte stream cut into buffers of chunk_bytes (small tensors share a
  // buffer). Two buffers: one is written (and observed) on a helper thread while the next fills.
  uint64_t data_bytes = 0;
  for (const auto& t : tensors) data_bytes += t.nbytes();
  chunk_bytes = std::max<uint64_t>(1, std::min(chunk_bytes, data_bytes));
  std::vector<uint8_t> bufs[2];
  bufs[0].resize(size_t(chunk_bytes));
  bufs[1].resize(size_t(chunk_bytes));
  std::future<bool> pending;
  int cur = 0;
  size_t used = 0;
  bool ok = true;
  auto flush = [&] {
    if (pending.valid() && !pending.get()) ok = false;
    pending = std::async(std::launch::async, [f, b = bufs[cur].data(), used, &observe] {
      if (observe) observe(b, used);
      return std::fwrite(b, 1, used, f) == used;
    });
    cur ^= 1;
    used = 0;
  };
  for (size_t i : data_order(tensors)) {
    const uint64_t total = tensors[i].nbytes();
    for (uint64_t off = 0; ok && off < total;) {
      const size_t n = size_t(std::min<uint64_t>(chunk_bytes - used, total - off));
      fill(i, off, bufs[cur].data() + used, n);
      used += n;
      off += n;
      if (used == chunk_bytes) flush();
    }
  }
  if (ok && used > 0) flush();
  if (pending.valid() && !pending.get()) ok = false;
  if (std::fclose(f) != 0) ok = false;
  if (!ok) return Status::io_error(path + ": write failed (disk full?)");
  return Status::ok_status();
}

}  // namespace dsv4::io

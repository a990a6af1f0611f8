// Byte buffers for files this machine writes and reads back (the prefix cache's state files):
// values in host byte order, a writer that appends and a reader that checks every length before
// it reads, so that a truncated or corrupt buffer is an error, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace dsv4 {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  // The element count (u64), then the elements.
  template <class T>
  void put_array(std::span<const T> v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    out_.insert(out_.end(), p, p + v.size_bytes());
  }

 private:
  std::vector<uint8_t>& out_;
};

class ByteReader {
 public:
  // `what` names the buffer in errors.
  ByteReader(std::span<const uint8_t> in, std::string what) : in_(in), what_(std::move(what)) {}
  template <class T>
  Status get(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() - pos_ < sizeof(T)) return truncated();
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok_status();
  }
  // An array written by put_array, which must hold exactly `expected` elements.
  template <class T>
  Status get_array(std::vector<T>* v, uint64_t expected, const char* name) {
    uint64_t n = 0;
    DSV4_TRY(get(&n));
    if (n != expected)
      return Status::corrupt_data(what_ + ": " + name + " holds " + std::to_string(n) + " elements, expected " +
                                  std::to_string(expected));
    if ((in_.size() - pos_) / sizeof(T) < n) return truncated();
    v->resize(size_t(n));
    if (n > 0) std::memcpy(v->data(), in_.data() + pos_, size_t(n) * sizeof(T));   // data() may be null
    pos_ += size_t(n) * sizeof(T);
    return Status::ok_status();
  }
  bool at_end() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  const std::string& what() const { return what_; }

 private:
  Status truncated() const { return Status::corrupt_data(what_ + ": truncated"); }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace dsv4

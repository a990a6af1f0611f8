// Read-only memory mapping of a whole file. Weights stay in the mapping (never copied).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace dsv4::io {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Faults every page of the mapping in now (reading the file where the page cache does not hold
  // it), so that inference does not stall on first-touch page faults: in a MoE decode step each
  // newly routed expert would otherwise fault its pages in one by one. Maps pages, copies nothing.
  // Errors: the file cannot be read.
  Status populate() const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dsv4::io

// Read-only memory mapping of a whole file. Weights stay in the mapping (never copied).
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
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
  // The same for [offset, offset + length) only (page-rounded by the kernel).
  Status populate(size_t offset, size_t length) const;

  // Bytes of the mapping that the kernel maps with 2 MiB pages (/proc/self/smaps FilePmdMapped);
  // nullopt where smaps cannot be read. The mapping is 2 MiB-aligned and advised MADV_HUGEPAGE,
  // so what the kernel reads in for it is cached in 2 MiB folios and mapped with 2 MiB pages
  // (on kernels and filesystems with large page-cache folios, e.g. ext4 from Linux 6.16, XFS);
  // pages that were already cached in smaller pieces stay on 4 KiB pages.
  std::optional<uint64_t> huge_mapped_bytes() const;
  // The same from a copy of /proc/self/smaps (reading it walks every mapped page table: ~50 ms
  // per read with 12 GB mapped, so a checkpoint reads it once for all of its shards).
  std::optional<uint64_t> huge_mapped_bytes(std::istream& smaps) const;

  // Drops this mapping's pages of [offset, offset + length) (offset rounded down to a page, the
  // range clipped to the file) and asks the kernel to evict them from the page cache, then
  // populates them again: pages the page cache held in small pieces come back from disk in 2 MiB
  // folios. Pages that another process maps stay as they are. Costs one read of the range.
  // Errors: as populate.
  Status reread(size_t offset = 0, size_t length = SIZE_MAX) const;

  // Drops this mapping's pages of [offset, offset + length) (rounded out to whole pages, clipped to
  // the file), leaving the page cache as it is: they leave this process's resident memory, and a
  // later touch or populate maps them again. For bytes the process reads from a copy instead
  // (io::Checkpoint::copy_to_node). Errors: madvise fails.
  Status unmap_pages(size_t offset, size_t length) const;

  // Whether reread gives 2 MiB pages here (kernel and filesystem): re-reads the 4 MiB window at
  // offset (rounded to 2 MiB, moved inside the file) and maps it a second time on its own, where
  // /proc/self/smaps tells about those pages alone. False for a file under 4 MiB or when smaps
  // cannot be read. Errors: as populate.
  Result<bool> reread_gives_huge_pages(size_t offset) const;

 private:
  MappedFile() = default;
  // populate's work for any mapping of this file (the check that it has not shrunk, then
  // MADV_POPULATE_READ, or a read of every page before Linux 5.14).
  Status fault_in(const uint8_t* at, size_t length) const;
  // reread's first half: drops this mapping's pages of the range, writes back dirty ones and asks
  // the kernel to evict them from the page cache.
  Status evict(size_t offset, size_t length) const;
  std::string path_;
  int fd_ = -1;   // kept open for posix_fadvise in reread
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The FilePmdMapped bytes of the VMAs of a /proc/<pid>/smaps listing that start in [lo, hi);
// nullopt when none does. MappedFile::huge_mapped_bytes reads /proc/self/smaps with it.
std::optional<uint64_t> smaps_pmd_mapped_bytes(std::istream& smaps, uintptr_t lo, uintptr_t hi);

}  // namespace dsv4::io

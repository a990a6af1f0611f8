#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/huge_pages.h"

namespace dsv4::io {

namespace {

// Maps [offset, offset + size) of fd (offset a multiple of 2 MiB) at a 2 MiB-aligned address, so
// that each 2 MiB of the file can be mapped by one page-table entry (file offset and address must
// agree modulo 2 MiB): reserves 2 MiB more address space than needed, maps the file over the
// aligned part and releases the rest.
void* map_aligned(int fd, size_t offset, size_t size) {
  const size_t span = size + kHugePageBytes;
  void* r = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return MAP_FAILED;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(r);
  const uintptr_t at = (lo + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  void* p = ::mmap(reinterpret_cast<void*>(at), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, off_t(offset));
  if (p == MAP_FAILED) {
    const int err = errno;
    ::munmap(r, span);
    errno = err;
    return MAP_FAILED;
  }
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t end = at + ((size + page - 1) & ~(page - 1));
  if (at > lo) ::munmap(r, at - lo);
  if (lo + span > end) ::munmap(reinterpret_cast<void*>(end), lo + span - end);
  return p;
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::io_error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::io_error(path + ": not a regular file");
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  if (f->size_ > 0) {
    void* p = map_aligned(fd, 0, f->size_);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Status::io_error(path + ": mmap failed: " + std::strerror(err));
    }
    f->data_ = static_cast<const uint8_t*>(p);
    // Measured on a Flash-shaped model: decode 12-18 tok/s on 4 KiB pages, 24-27 on 2 MiB pages.
    advise_huge_pages(p, f->size_);
  }
  f->fd_ = fd;
  return f;
}

Status MappedFile::populate() const { return populate(0, size_); }

Status MappedFile::populate(size_t offset, size_t length) const {
  // madvise wants a page-aligned start (the mapping itself is).
  const size_t page = size_t(::sysconf(_SC_PAGESIZE)), lead = offset % page;
  return fault_in(data_ + offset - lead, std::min(length + lead, size_ - (offset - lead)));
}

Status MappedFile::fault_in(const uint8_t* at, size_t length) const {
  if (length == 0) return Status::ok_status();
  // Reading a page past the end of a file that shrank after it was mapped raises SIGBUS.
  const Status shrunk = Status::io_error(path_ + ": cannot read the file into memory: it is shorter than when it "
                                         "was opened (changed or truncated while in use)");
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && size_t(st.st_size) < size_) return shrunk;
  void* p = const_cast<uint8_t*>(at);
#ifdef MADV_POPULATE_READ
  for (;;) {
    if (::madvise(p, length, MADV_POPULATE_READ) == 0) return Status::ok_status();
    if (errno != EINTR) break;
  }
  if (errno == EFAULT) return shrunk;   // it shrank after the check above
  if (errno != EINVAL) return Status::io_error(path_ + ": cannot read the file into memory: " + std::strerror(errno));
#endif
  // Kernels before 5.14 (EINVAL): read one byte of every page.
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  uint8_t sink = 0;
  for (size_t i = 0; i < length; i += page) sink ^= *static_cast<const volatile uint8_t*>(at + i);
  (void)sink;
  return Status::ok_status();
}

std::optional<uint64_t> smaps_pmd_mapped_bytes(std::istream& smaps, uintptr_t lo, uintptr_t hi) {
  uint64_t kib = 0;
  bool seen = false, inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    const size_t dash = line.find('-'), space = line.find(' ');
    if (dash != std::string::npos && space != std::string::npos && dash < space) {   // a VMA's header line
      const uintptr_t start = std::strtoull(line.c_str(), nullptr, 16);
      inside = start >= lo && start < hi;
      seen = seen || inside;
    } else if (inside && line.rfind("FilePmdMapped:", 0) == 0) {
      kib += std::strtoull(line.c_str() + 14, nullptr, 10);
    }
  }
  if (!seen) return std::nullopt;
  return kib * 1024;
}

std::optional<uint64_t> MappedFile::huge_mapped_bytes(std::istream& smaps) const {
  if (size_ == 0) return 0;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_);
  return smaps_pmd_mapped_bytes(smaps, lo, lo + size_);
}

std::optional<uint64_t> MappedFile::huge_mapped_bytes() const {
  std::ifstream f("/proc/self/smaps");
  if (!f) return std::nullopt;
  return huge_mapped_bytes(f);
}

Status MappedFile::reread(size_t offset, size_t length) const {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  offset = offset / page * page;
  if (offset >= size_) return Status::ok_status();
  length = std::min(length, size_ - offset);
  DSV4_TRY(evict(offset, length));
  return populate(offset, length);
}

Result<bool> MappedFile::reread_gives_huge_pages(size_t offset) const {
  const size_t len = 2 * kHugePageBytes;
  if (size_ < len) return false;
  offset = std::min(offset / kHugePageBytes * kHugePageBytes, (size_ - len) / kHugePageBytes * kHugePageBytes);
  DSV4_TRY(evict(offset, len));
  // A mapping of the window alone is a VMA of its own, so smaps tells about these pages only.
  void* t = map_aligned(fd_, offset, len);
  if (t == MAP_FAILED) return Status::io_error(path_ + ": mmap failed: " + std::strerror(errno));
  advise_huge_pages(t, len);
  Status st = fault_in(static_cast<const uint8_t*>(t), len);
  std::optional<uint64_t> huge;
  if (st.ok()) {
    std::ifstream smaps("/proc/self/smaps");
    if (smaps) huge = smaps_pmd_mapped_bytes(smaps, reinterpret_cast<uintptr_t>(t), reinterpret_cast<uintptr_t>(t) + len);
  }
  ::munmap(t, len);
  DSV4_TRY(st);
  DSV4_TRY(populate(offset, len));
  return huge.value_or(0) > 0;
}

Status MappedFile::unmap_pages(size_t offset, size_t length) const {
  if (offset >= size_ || length == 0) return Status::ok_status();
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t begin = offset / page * page, end = std::min(offset + std::min(length, size_ - offset), size_);
  // A read-only private file mapping has nothing to lose: the next touch maps the file again.
  if (::madvise(const_cast<uint8_t*>(data_ + begin), end - begin, MADV_DONTNEED) != 0)
    return Status::io_error(path_ + ": cannot drop the mapped pages: " + std::strerror(errno));
  return Status::ok_status();
}

Status MappedFile::evict(size_t offset, size_t length) const {
  // Unmapped clean pages are what POSIX_FADV_DONTNEED evicts: drop this mapping's entries first.
  DSV4_TRY(unmap_pages(offset, length));
  // Dirty pages (a file written moments ago, e.g. just downloaded) are not evicted: write them
  // back first. Best effort: a filesystem that cannot sync keeps them, and they stay small.
  (void)::fdatasync(fd_);
  const int rc = ::posix_fadvise(fd_, off_t(offset), off_t(length), POSIX_FADV_DONTNEED);
  if (rc != 0) return Status::io_error(path_ + ": cannot evict from the page cache: " + std::strerror(rc));
  return Status::ok_status();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace dsv4::io

#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dsv4::io {

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
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Status::io_error(path + ": mmap failed: " + std::strerror(err));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

Status MappedFile::populate() const {
  if (size_ == 0) return Status::ok_status();
  // Reading a page past the end of a file that shrank after it was mapped raises SIGBUS.
  const Status shrunk = Status::io_error(path_ + ": cannot read the file into memory: it is shorter than when it "
                                         "was opened (changed or truncated while in use)");
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && size_t(st.st_size) < size_) return shrunk;
  void* p = const_cast<uint8_t*>(data_);
#ifdef MADV_POPULATE_READ
  for (;;) {
    if (::madvise(p, size_, MADV_POPULATE_READ) == 0) return Status::ok_status();
    if (errno != EINTR) break;
  }
  if (errno == EFAULT) return shrunk;   // it shrank after the check above
  if (errno != EINVAL) return Status::io_error(path_ + ": cannot read the file into memory: " + std::strerror(errno));
#endif
  // Kernels before 5.14 (EINVAL): read one byte of every page.
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  uint8_t sink = 0;
  for (size_t i = 0; i < size_; i += page) sink ^= *static_cast<const volatile uint8_t*>(data_ + i);
  (void)sink;
  return Status::ok_status();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace dsv4::io

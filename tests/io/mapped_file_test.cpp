#include "io/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_tmp_dir.h"

namespace dsv4::io {
namespace {

// RssFile of this process (file-backed pages mapped into it), in bytes.
uint64_t rss_file_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("RssFile:", 0) == 0) return std::stoull(line.substr(8)) * 1024;
  return 0;
}

std::string write_file(const test::TempDir& dir, size_t bytes) {
  const std::string path = dir / "blob.bin";
  std::vector<char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = char(i * 131);
  std::ofstream(path, std::ios::binary).write(data.data(), std::streamsize(bytes));
  return path;
}

TEST(MappedFile, MapsAWholeFileWithoutReadingIt) {
  test::TempDir dir;
  const size_t n = size_t(32) << 20;
  auto f = MappedFile::open(write_file(dir, n));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->size(), n);
  EXPECT_EQ((*f)->data()[12345], uint8_t(12345 * 131));
}

// populate() maps every page now: the file's pages show up in RssFile at once (an unpopulated
// mapping adds nothing until it is read).
TEST(MappedFile, PopulateFaultsEveryPageIn) {
  test::TempDir dir;
  const size_t n = size_t(32) << 20;
  const std::string path = write_file(dir, n);
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const uint64_t before = rss_file_bytes();
  ASSERT_TRUE((*f)->populate().ok());
  const uint64_t after = rss_file_bytes();
  EXPECT_GE(after, before + n - (size_t(1) << 20)) << "RssFile " << before << " -> " << after;
  EXPECT_EQ((*f)->data()[n - 1], uint8_t((n - 1) * 131));
}

TEST(MappedFile, PopulateOfAnEmptyFileIsANoOp) {
  test::TempDir dir;
  auto f = MappedFile::open(write_file(dir, 0));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->size(), 0u);
  EXPECT_TRUE((*f)->populate().ok());
}

// A shard truncated after it was mapped: populate reports it instead of the process dying of
// SIGBUS on the first read past the new end.
TEST(MappedFile, PopulateOfAFileTruncatedAfterOpeningIsAnError) {
  test::TempDir dir;
  const size_t n = size_t(8) << 20;
  const std::string path = write_file(dir, n);
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(::truncate(path.c_str(), off_t(1) << 20), 0);
  const Status st = (*f)->populate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("shorter than when it was opened"), std::string::npos) << st.to_string();
  EXPECT_NE(st.to_string().find(path), std::string::npos) << st.to_string();
}

// Each 2 MiB of the file can only be mapped by one page-table entry if address and file offset
// agree modulo 2 MiB: the mapping starts 2 MiB-aligned whatever the size (the kernel itself
// aligns only some mappings: none under 2 MiB).
TEST(MappedFile, MapsAtA2MiBAlignedAddress) {
  test::TempDir dir;
  for (size_t n : {(size_t(1) << 20) + 123, (size_t(5) << 20) + 123}) {
    auto f = MappedFile::open(write_file(dir, n));
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->data()) % (size_t(2) << 20), 0u) << n << " bytes";
    EXPECT_EQ((*f)->data()[n - 1], uint8_t((n - 1) * 131));
  }
}

TEST(MappedFile, RereadKeepsTheContents) {
  test::TempDir dir;
  const size_t n = size_t(32) << 20;
  auto f = MappedFile::open(write_file(dir, n));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_TRUE((*f)->populate().ok());
  // The whole file, a range from an unaligned offset, and a range running past the end.
  for (auto [offset, length] : {std::pair<size_t, size_t>{0, SIZE_MAX}, {(size_t(5) << 20) + 17, size_t(3) << 20},
                                {n - 5000, size_t(1) << 20}}) {
    const Status st = (*f)->reread(offset, length);
    ASSERT_TRUE(st.ok()) << st.to_string();
    for (size_t i = 0; i < n; i += 4093) ASSERT_EQ((*f)->data()[i], uint8_t(i * 131)) << "offset " << i;
  }
  const std::optional<uint64_t> huge = (*f)->huge_mapped_bytes();
  ASSERT_TRUE(huge.has_value());   // Linux has /proc/self/smaps
  EXPECT_LE(*huge, n);
  EXPECT_EQ(*huge % (size_t(2) << 20), 0u);
}

// The probe answers for its window alone and leaves the contents as they were; a file too small
// for a 4 MiB window gets "no" without a read. (Whether the answer is yes depends on the kernel
// and the filesystem of the temporary directory.)
TEST(MappedFile, RereadProbeKeepsTheContents) {
  test::TempDir dir;
  const size_t n = size_t(9) << 20;
  auto f = MappedFile::open(write_file(dir, n));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_TRUE((*f)->populate().ok());
  for (size_t offset : {size_t(0), n / 2, n}) {   // n: moved back inside the file
    Result<bool> works = (*f)->reread_gives_huge_pages(offset);
    ASSERT_TRUE(works.ok()) << works.status().to_string();
    for (size_t i = 0; i < n; i += 4093) ASSERT_EQ((*f)->data()[i], uint8_t(i * 131)) << "offset " << i;
  }
  auto small = MappedFile::open(write_file(dir, (size_t(4) << 20) - 1));
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  Result<bool> none = (*small)->reread_gives_huge_pages(0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
}

TEST(MappedFile, RereadOfAFileTruncatedAfterOpeningIsAnError) {
  test::TempDir dir;
  const size_t n = size_t(8) << 20;
  const std::string path = write_file(dir, n);
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_TRUE((*f)->populate().ok());
  ASSERT_EQ(::truncate(path.c_str(), off_t(1) << 20), 0);
  const Status st = (*f)->reread();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("shorter than when it was opened"), std::string::npos) << st.to_string();
  Result<bool> probe = (*f)->reread_gives_huge_pages(size_t(4) << 20);
  ASSERT_FALSE(probe.ok());
  EXPECT_NE(probe.status().to_string().find("shorter than when it was opened"), std::string::npos);
}

TEST(MappedFile, SmapsCountsOnlyTheVmasOfTheRange) {
  std::istringstream smaps(
      "7f0000000000-7f0000400000 r--p 00000000 fe:00 12 /m/a.safetensors\n"
      "Rss:                4096 kB\n"
      "FilePmdMapped:      4096 kB\n"
      "7f0000400000-7f0000600000 r--p 00400000 fe:00 12 /m/a.safetensors\n"
      "FilePmdMapped:      2048 kB\n"
      "VmFlags: rd mr mw me hg\n"
      "7f0000600000-7f0000800000 r--p 00000000 fe:00 13 /m/b.safetensors\n"
      "FilePmdMapped:      2048 kB\n");
  const auto both = smaps_pmd_mapped_bytes(smaps, 0x7f0000000000, 0x7f0000600000);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(*both, uint64_t(6) << 20);
  std::istringstream again(smaps.str());
  EXPECT_FALSE(smaps_pmd_mapped_bytes(again, 0x7e0000000000, 0x7e0000600000).has_value());
}

TEST(MappedFile, MissingFileIsAnError) {
  test::TempDir dir;
  auto f = MappedFile::open(dir / "no-such-file");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().to_string().find("no-such-file"), std::string::npos);
}

}  // namespace
}  // namespace dsv4::io

#include "io/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
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

TEST(MappedFile, MissingFileIsAnError) {
  test::TempDir dir;
  auto f = MappedFile::open(dir / "no-such-file");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().to_string().find("no-such-file"), std::string::npos);
}

}  // namespace
}  // namespace dsv4::io

#include "core/numa_maps.h"

#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "core/node_memory.h"

namespace dsv4 {

TEST(NumaMaps, SumsTheNodesOfTheMappingsInRange) {
  // Two shards' mappings (file pages cached on both nodes, one with 2 MiB pages: counted in base
  // pages), a node copy bound to node 1, a mapping outside the ranges, and a hugetlbfs mapping
  // (counted in its own page size).
  std::istringstream listing(
      "7f0000000000 default file=/m/model-00001.safetensors mapped=600 N0=512 N1=88 kernelpagesize_kB=4\n"
      "7f0000400000 default file=/m/model-00002.safetensors mapped=10 active=0 N1=10 kernelpagesize_kB=4\n"
      "7f1000000000 bind:1 anon=1024 dirty=1024 N1=1024 kernelpagesize_kB=4\n"
      "7f2000000000 default file=/usr/lib/libc.so.6 mapped=40 N0=40 kernelpagesize_kB=4\n"
      "7f3000000000 default file=/dev/hugepages/x huge dirty=2 N0=2 kernelpagesize_kB=2048\n"
      "garbage line\n");
  const AddressRanges ranges = {{0x7f0000000000, 0x7f0000800000}, {0x7f1000000000, 0x7f1000400000},
                                {0x7f3000000000, 0x7f3000400000}};
  const std::map<int, uint64_t> bytes = numa_maps_node_bytes(listing, ranges);
  EXPECT_EQ(bytes.at(0), 512u * 4096 + 2u * 2048 * 1024);
  EXPECT_EQ(bytes.at(1), (88u + 10 + 1024) * 4096);
  EXPECT_EQ(bytes.size(), 2u);
}

TEST(NumaMaps, NothingInRangeIsEmpty) {
  std::istringstream listing("7f2000000000 default file=/usr/lib/libc.so.6 mapped=40 N0=40 kernelpagesize_kB=4\n");
  EXPECT_TRUE(numa_maps_node_bytes(listing, {{0x1000, 0x2000}}).empty());
}

TEST(NodeMemory, PagesLandOnTheBoundNode) {
  Result<NodeMemory> m = NodeMemory::allocate(3 << 20, 0);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->size(), size_t(4) << 20);   // whole 2 MiB pages
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % (2 << 20), 0u);
  std::memset(m->data(), 1, m->size());
  const uintptr_t lo = reinterpret_cast<uintptr_t>(m->data());
  const std::optional<std::map<int, uint64_t>> bytes = resident_bytes_per_node({{lo, lo + m->size()}});
  if (!bytes) GTEST_SKIP() << "no /proc/self/numa_maps";
  EXPECT_EQ(bytes->at(0), m->size());
  EXPECT_EQ(bytes->size(), 1u);
  EXPECT_FALSE(NodeMemory::allocate(1, 4095).ok());   // no such node
}

}  // namespace dsv4

#include "core/numa_topology.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include <fstream>

namespace dsv4 {

namespace {

std::vector<int> cpus(const char* list) {
  Result<std::vector<int>> r = parse_cpulist(list);
  EXPECT_TRUE(r.ok()) << list;
  return r.ok() ? *r : std::vector<int>();
}

// A two-socket machine, with hyper-threads numbered after the cores (a common BIOS order):
// node 0 holds CPUs 0-7 and 16-23, node 1 CPUs 8-15 and 24-31.
std::vector<NumaNode> two_sockets() {
  return {NumaNode{0, cpus("0-7,16-23")}, NumaNode{1, cpus("8-15,24-31")}};
}

}  // namespace

TEST(NumaTopology, ParsesCpuLists) {
  EXPECT_EQ(cpus("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(cpus("5"), (std::vector<int>{5}));
  EXPECT_TRUE(parse_cpulist("").value().empty());   // a memory-only node
  EXPECT_EQ(cpus("4,0-1,1"), (std::vector<int>{0, 1, 4}));
  for (const char* bad : {"3-1", "a", "1,", ",1", "1--2", "-1", "1 2"}) EXPECT_FALSE(parse_cpulist(bad).ok()) << bad;
}

TEST(NumaTopology, FormatsCpuListsAsRanges) {
  EXPECT_EQ(format_cpulist({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpulist({}), "");
  EXPECT_EQ(format_cpulist(cpus("8-15,24-31")), "8-15,24-31");
}

TEST(NumaTopology, OneRankPerSocketHasItsSocketAsHome) {
  // mpirun --bind-to numa: each rank's affinity is its node's CPUs (or a part of them).
  EXPECT_EQ(home_numa_node(two_sockets(), cpus("0-7,16-23")).value(), 0);
  EXPECT_EQ(home_numa_node(two_sockets(), cpus("8-15,24-31")).value(), 1);
  EXPECT_EQ(home_numa_node(two_sockets(), cpus("9")).value(), 1);   // --bind-to core
  EXPECT_EQ(nodes_of_cpus(two_sockets(), cpus("7-8")), (std::vector<int>{0, 1}));
}

TEST(NumaTopology, AnAffinitySpanningSocketsIsRefused) {
  // An unbound process (every CPU), or a binding that straddles the sockets.
  for (const char* list : {"0-31", "7-8", "0,24"}) {
    Result<int> home = home_numa_node(two_sockets(), cpus(list));
    ASSERT_FALSE(home.ok()) << list;
    EXPECT_NE(home.status().message().find("span NUMA nodes 0 and 1"), std::string::npos) << home.status().message();
    EXPECT_NE(home.status().message().find("--bind-to numa"), std::string::npos);
  }
  EXPECT_FALSE(home_numa_node(two_sockets(), cpus("40")).ok());   // on no node
  EXPECT_FALSE(home_numa_node(two_sockets(), {}).ok());
}

TEST(NumaTopology, ReadsASysfsNodeDirectory) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dsv4-numa-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  for (auto [node, list] : {std::pair{"node1", "8-15,24-31\n"}, std::pair{"node0", "0-7,16-23\n"},
                            std::pair{"node2", "\n"}}) {
    std::filesystem::create_directories(dir / node);
    std::ofstream(dir / node / "cpulist") << list;
  }
  std::filesystem::create_directories(dir / "power");   // not a node
  std::ofstream(dir / "online") << "0-2\n";
  Result<std::vector<NumaNode>> nodes = read_numa_topology(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(nodes.ok()) << nodes.status().to_string();
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].id, 0);
  EXPECT_EQ((*nodes)[1].cpus, cpus("8-15,24-31"));
  EXPECT_TRUE((*nodes)[2].cpus.empty());   // memory only: never a home
  EXPECT_EQ(home_numa_node(*nodes, cpus("16")).value(), 0);
  EXPECT_FALSE(read_numa_topology((dir / "absent").string()).ok());
}

TEST(NumaTopology, ThisProcessHasAffinityOnTheMachinesNodes) {
  Result<std::vector<NumaNode>> nodes = read_numa_topology();
  if (!nodes.ok()) GTEST_SKIP() << nodes.status().to_string();
  Result<std::vector<int>> mine = affinity_cpus();
  ASSERT_TRUE(mine.ok());
  ASSERT_FALSE(mine->empty());
  EXPECT_FALSE(nodes_of_cpus(*nodes, *mine).empty());
}

}  // namespace dsv4

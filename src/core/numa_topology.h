// Which NUMA node a process runs on (issue #17, --numa): the machine's nodes and their CPUs, the
// CPUs this process may run on, and the one node those CPUs belong to. An expert-parallel launch
// with one rank per socket (`mpirun --map-by numa --bind-to numa`) copies its replicated weights
// to that node (io::Checkpoint::copy_to_node); a rank whose CPUs span several nodes has no home
// node and is refused, since its threads would read the copy remotely from the other node.
//
// The parsing and the decision are pure functions over text and CPU lists, so a two-socket layout
// can be tested on a one-node machine; read_numa_topology and affinity_cpus read the system.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace dsv4 {

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;   // ascending
};

// A kernel CPU list ("0-3,8,10-11", as in /sys/devices/system/node/node0/cpulist and
// /proc/self/status Cpus_allowed_list), ascending and without repeats; empty text is no CPU.
// Errors: anything else (a reversed range, a stray character).
Result<std::vector<int>> parse_cpulist(std::string_view text);
// The inverse, compressed into ranges: {0,1,2,3,8} -> "0-3,8".
std::string format_cpulist(const std::vector<int>& cpus);

// The nodes of a machine from a sysfs node directory (/sys/devices/system/node): one per nodeN
// subdirectory, with its cpulist, by id. A node without CPUs (memory only) is listed with none.
// Errors: the directory cannot be read or has no node (a kernel without NUMA support still
// lists node0).
Result<std::vector<NumaNode>> read_numa_topology(const std::string& node_dir = "/sys/devices/system/node");

// The CPUs this process may run on (sched_getaffinity), ascending. Errors: the call fails.
Result<std::vector<int>> affinity_cpus();

// The ids of the nodes holding at least one of `cpus`, ascending.
std::vector<int> nodes_of_cpus(const std::vector<NumaNode>& nodes, const std::vector<int>& cpus);

// The one node that every CPU of `cpus` belongs to. Errors (failed_precondition, naming the CPUs
// and nodes): the CPUs span several nodes (the process is not bound to one node), or a CPU is on
// no listed node.
Result<int> home_numa_node(const std::vector<NumaNode>& nodes, const std::vector<int>& cpus);

// home_numa_node of this machine's nodes and this process's CPUs.
Result<int> process_numa_node();

}  // namespace dsv4

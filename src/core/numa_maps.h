// Where a process's pages are, per NUMA node (issue #17, --numa): `dsv4 bench` reports the bytes
// of weights each node holds for a rank, so a user can see that a rank bound to one socket reads
// only that socket's memory.
//
// Read from /proc/self/numa_maps, which gives, per mapping (VMA), the pages present on each node
// ("N0=512 N1=3"), counted in base pages of kernelpagesize_kB (a 2 MiB transparent huge page
// counts 512): exact for every present page, of file mappings (the shards' page cache) and
// anonymous ones (the node copy) alike, in one read. Querying move_pages(2) instead would take
// one array entry per page (3 M for 12 GB), or a sample that misses the boundary pages where the
// ranks' shares meet. Reading numa_maps walks the page tables, like smaps: tens of ms per read
// for a large model, so it is read once per report, not per step.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace dsv4 {

// [lo, hi) address ranges.
using AddressRanges = std::vector<std::pair<uintptr_t, uintptr_t>>;

// node id -> bytes present, summed over the VMAs of a numa_maps listing that start inside one of
// `ranges`. Lines that are not VMA lines are skipped; nodes holding no page are absent.
std::map<int, uint64_t> numa_maps_node_bytes(std::istream& numa_maps, const AddressRanges& ranges);

// The same from /proc/self/numa_maps; nullopt where it cannot be read (a kernel without NUMA).
std::optional<std::map<int, uint64_t>> resident_bytes_per_node(const AddressRanges& ranges);

}  // namespace dsv4

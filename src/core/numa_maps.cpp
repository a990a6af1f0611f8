#include "core/numa_maps.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace dsv4 {

std::map<int, uint64_t> numa_maps_node_bytes(std::istream& numa_maps, const AddressRanges& ranges) {
  std::map<int, uint64_t> bytes;
  std::string line;
  while (std::getline(numa_maps, line)) {
    char* end = nullptr;
    const uintptr_t start = std::strtoull(line.c_str(), &end, 16);
    if (end == line.c_str() || *end != ' ') continue;   // not "<address> <policy> ..."
    bool inside = false;
    for (const auto& [lo, hi] : ranges) inside = inside || (start >= lo && start < hi);
    if (!inside) continue;
    std::istringstream fields(line.substr(size_t(end - line.c_str())));
    std::map<int, uint64_t> pages;
    uint64_t page_kib = 4;
    std::string f;
    while (fields >> f) {
      const size_t eq = f.find('=');
      if (eq == std::string::npos) continue;
      if (f.rfind("kernelpagesize_kB=", 0) == 0) {
        page_kib = std::strtoull(f.c_str() + eq + 1, nullptr, 10);
      } else if (f.size() > 1 && f[0] == 'N' && eq > 1 && f.find_first_not_of("0123456789", 1) == eq) {
        pages[std::atoi(f.c_str() + 1)] += std::strtoull(f.c_str() + eq + 1, nullptr, 10);
      }
    }
    for (const auto& [node, n] : pages) bytes[node] += n * page_kib * 1024;
  }
  return bytes;
}

std::optional<std::map<int, uint64_t>> resident_bytes_per_node(const AddressRanges& ranges) {
  std::ifstream in("/proc/self/numa_maps");
  if (!in) return std::nullopt;
  return numa_maps_node_bytes(in, ranges);
}

}  // namespace dsv4

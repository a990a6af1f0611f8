#include "core/numa_topology.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dsv4 {

namespace {

// A non-negative decimal number filling [p, end) exactly.
bool parse_id(const char* p, const char* end, int& out) {
  if (p == end) return false;
  auto [q, ec] = std::from_chars(p, end, out);
  return ec == std::errc() && q == end && out >= 0;
}

}  // namespace

Result<std::vector<int>> parse_cpulist(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::vector<int> cpus;
  const Status bad = Status::invalid_argument("not a CPU list: '" + std::string(text) + "'");
  size_t at = 0;
  while (at < text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(at, comma - at);
    const size_t dash = item.find('-');
    int lo = 0, hi = 0;
    const char* b = item.data();
    const char* e = b + item.size();
    if (dash == std::string_view::npos) {
      if (!parse_id(b, e, lo)) return bad;
      hi = lo;
    } else if (!parse_id(b, b + dash, lo) || !parse_id(b + dash + 1, e, hi) || hi < lo) {
      return bad;
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    at = comma + 1;
    if (comma + 1 == text.size()) return bad;   // a trailing comma
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string format_cpulist(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

Result<std::vector<NumaNode>> read_numa_topology(const std::string& node_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<NumaNode> nodes;
  for (const auto& entry : fs::directory_iterator(node_dir, ec)) {
    const std::string name = entry.path().filename().string();
    NumaNode n;
    if (name.rfind("node", 0) != 0 || !parse_id(name.data() + 4, name.data() + name.size(), n.id)) continue;
    std::ifstream in(entry.path() / "cpulist");
    std::stringstream text;
    text << in.rdbuf();
    Result<std::vector<int>> cpus = parse_cpulist(text.str());
    if (!cpus.ok()) return cpus.status().with_context((entry.path() / "cpulist").string());
    n.cpus = std::move(*cpus);
    nodes.push_back(std::move(n));
  }
  if (ec) return Status::io_error(node_dir + ": " + ec.message());
  if (nodes.empty()) return Status::not_found(node_dir + ": no NUMA node listed");
  std::sort(nodes.begin(), nodes.end(), [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  return nodes;
}

Result<std::vector<int>> affinity_cpus() {
  // A set large enough for any machine the kernel supports (CPU_SETSIZE is 1024).
  constexpr int kMaxCpus = 8192;
  cpu_set_t* set = CPU_ALLOC(kMaxCpus);
  const size_t bytes = CPU_ALLOC_SIZE(kMaxCpus);
  CPU_ZERO_S(bytes, set);
  if (::sched_getaffinity(0, bytes, set) != 0) {
    const int err = errno;
    CPU_FREE(set);
    return Status::io_error(std::string("sched_getaffinity: ") + std::strerror(err));
  }
  std::vector<int> cpus;
  for (int c = 0; c < kMaxCpus; ++c)
    if (CPU_ISSET_S(c, bytes, set)) cpus.push_back(c);
  CPU_FREE(set);
  return cpus;
}

std::vector<int> nodes_of_cpus(const std::vector<NumaNode>& nodes, const std::vector<int>& cpus) {
  std::vector<int> out;
  for (const NumaNode& n : nodes)
    if (std::any_of(cpus.begin(), cpus.end(),
                    [&](int c) { return std::binary_search(n.cpus.begin(), n.cpus.end(), c); }))
      out.push_back(n.id);
  return out;
}

Result<int> home_numa_node(const std::vector<NumaNode>& nodes, const std::vector<int>& cpus) {
  const std::vector<int> on = nodes_of_cpus(nodes, cpus);
  std::vector<int> listed;
  for (const NumaNode& n : nodes) listed.insert(listed.end(), n.cpus.begin(), n.cpus.end());
  std::sort(listed.begin(), listed.end());
  std::vector<int> stray;
  for (int c : cpus)
    if (!std::binary_search(listed.begin(), listed.end(), c)) stray.push_back(c);
  if (!stray.empty())
    return Status::invalid_argument("CPUs " + format_cpulist(stray) + " of this process are on no NUMA node listed");
  if (on.size() == 1) return on.front();
  if (on.empty()) return Status::invalid_argument("this process may run on no CPU");
  std::string which;
  for (size_t i = 0; i < on.size(); ++i) which += (i == 0 ? "" : i + 1 == on.size() ? " and " : ", ") + std::to_string(on[i]);
  return Status::invalid_argument("this process may run on CPUs " + format_cpulist(cpus) + ", which span NUMA nodes " +
                                  which + ": bind each process to one node (mpirun --map-by numa --bind-to numa)");
}

Result<int> process_numa_node() {
  DSV4_ASSIGN_OR_RETURN(const std::vector<NumaNode> nodes, read_numa_topology());
  DSV4_ASSIGN_OR_RETURN(const std::vector<int> cpus, affinity_cpus());
  return home_numa_node(nodes, cpus);
}

}  // namespace dsv4

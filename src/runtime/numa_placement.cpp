#include "runtime/numa_placement.h"

#include <memory>
#include <set>

#include "core/numa_topology.h"
#include "runtime/world_engine.h"

namespace dsv4::runtime {

Result<io::NodeCopy> numa_node_copy(const std::string& dir) {
  DSV4_ASSIGN_OR_RETURN(const io::ModelConfig cfg, io::load_config(dir + "/config.json"));
  if (cfg.architecture != io::Architecture::v4)
    return Status::unsupported(dir + ": --numa runs DeepSeek-V4 checkpoints only, not V4.1 yet");
  Result<int> home = process_numa_node();
  if (!home.ok()) return home.status().with_context("--numa");
  // Every expert lies outside the empty range [0, 0).
  auto experts = std::make_shared<const std::set<std::string>>(expert_tensors_outside(cfg, 0, 0));
  return io::NodeCopy{*home, [experts](const std::string& name) { return !experts->count(name); }};
}

}  // namespace dsv4::runtime

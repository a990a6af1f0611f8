// --numa (issue #17, docs/scale-out.md): a process bound to one NUMA node reads its weights from
// that node's memory. Under `mpirun --map-by numa --bind-to numa` (one rank per socket) each rank
// copies the tensors every rank reads (attention, shared experts, hyper-connections, embedding,
// head, router) into memory bound to its own node; its routed experts, read by it alone, stay in
// the page cache, which the rank's own reads bring in on its node.
#pragma once

#include <string>

#include "io/checkpoint.h"

namespace dsv4::runtime {

// The node copy of a --numa process (io::NodeCopy, for model::load_model): the NUMA node its CPU
// affinity lies on (core/numa_topology.h), and every tensor of the checkpoint but the routed
// experts. Errors: the affinity spans several nodes (naming them, and how to bind), the
// machine's nodes cannot be read, a V4.1 checkpoint (its experts are laid out differently; not
// supported yet), config.json unreadable.
Result<io::NodeCopy> numa_node_copy(const std::string& dir);

}  // namespace dsv4::runtime

// A checkpoint directory in the official layout: config.json, model.safetensors.index.json and
// the sharded *.safetensors it names (spec §3.1). Shards are memory-mapped; tensors are views.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/function_ref.h"
#include "core/node_memory.h"
#include "io/config.h"
#include "io/safetensors.h"

namespace dsv4::io {

// The tensors a process maps (Checkpoint::open); empty: all of them. An expert-parallel process
// (issue #17) wants every tensor but the other processes' routed experts.
using TensorFilter = std::function<bool(const std::string& name)>;

// The shard files (names in `dir`) holding, by model.safetensors.index.json, no tensor that
// `wanted` accepts: a process with that filter neither maps nor verifies them, and they need not
// be on its node. Empty without a filter or without an index (a shard's tensors are then only
// known by opening it). Errors: an unreadable or malformed index.
Result<std::set<std::string>> unneeded_shards(const std::string& dir, const TensorFilter& wanted);

// Tensors a process copies into memory of its own NUMA node (issue #17, --numa): the replicated
// tensors of a rank bound to one socket, which would otherwise be read from page cache that
// another socket's rank may have brought in on its own node. node < 0: no copy.
struct NodeCopy {
  int node = -1;
  TensorFilter tensors;
};

class Checkpoint {
 public:
  // Opens, parses and validates the directory: every tensor of expected_tensors(config) must be
  // present with its dtype and shape, and no unknown tensor may appear.
  // With `wanted`, only the shards holding a tensor it accepts are opened (unneeded_shards): the
  // inventory is still checked whole against the index (every tensor listed, none unknown), the
  // dtypes and shapes of the opened shards' tensors only, and tensor()/find() know those only.
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& dir, const TensorFilter& wanted = {});

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  // Entries carry the inventory's element type and shape, not the header's label: an FP4 matrix is
  // fp4_e2m1 [rows, cols], stored as I8 [rows, cols/2] (io::stored_form).
  // REQUIRES: name is in the inventory (validated at open) and in an opened shard.
  const TensorEntry& tensor(const std::string& name) const;
  const TensorEntry* find(const std::string& name) const;   // null: not in an opened shard
  size_t tensor_count() const { return tensors_.size(); }
  uint64_t total_bytes() const;
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  // MappedFile::populate of every shard; shard_bytes is the size of their mappings.
  // With reread_small_pages, a shard left mostly on 4 KiB pages (the page cache held it in small
  // pieces, e.g. cached by an earlier reader) is read again (MappedFile::reread) so that it is
  // mapped with 2 MiB pages. 4 MiB of the first such shard are re-read first: where that does not
  // give 2 MiB pages (a kernel or filesystem without large page-cache folios), no shard is.
  // Returns the bytes re-read.
  Result<uint64_t> populate(bool reread_small_pages) const;
  // MappedFile::populate of the bytes of the tensors `wanted` accepts, and of nothing else (an
  // expert-parallel process, issue #17: every tensor but the other processes' routed experts), so
  // that the process's resident memory holds only what it computes with. Returns the bytes
  // populated. Errors: a shard cannot be read.
  Result<uint64_t> populate_tensors(FunctionRef<bool(const std::string& name)> wanted) const;
  uint64_t shard_bytes() const;
  // Copies the opened tensors that copy.tensors accepts into one block bound to copy.node
  // (core/node_memory.h: 2 MiB pages), points their entries at the copy (the same bytes, so
  // every result stays bit-identical) and drops this process's mapping of the shard pages they
  // were read from (MappedFile::unmap_pages), so that the process holds each of them once, on its
  // node. Call before views are taken of the entries (model::load_model), and before populating:
  // populate_tensors skips the copied tensors and populates again the pages a copied tensor
  // shared with another. Once per checkpoint. Returns the bytes copied.
  // Errors: the memory cannot be bound to the node; a shard cannot be read.
  Result<uint64_t> copy_to_node(const NodeCopy& copy);
  uint64_t node_copy_bytes() const { return node_copy_bytes_; }
  // Bytes of the weights present in memory per NUMA node, for this process: the pages of its
  // shard mappings and of the node copy (core/numa_maps.h). nullopt where /proc/self/numa_maps
  // cannot be read.
  std::optional<std::map<int, uint64_t>> resident_bytes_per_node() const;
  // Bytes of the tensors that were not aligned to their element size in their shard, and are
  // therefore read from an aligned copy (0 for files written by the safetensors library).
  uint64_t realigned_bytes() const { return realigned_bytes_; }

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<MappedFile>> shards_;
  std::vector<std::string> shard_paths_;
  std::map<std::string, TensorEntry> tensors_;
  std::vector<std::unique_ptr<uint8_t[]>> realigned_;
  uint64_t realigned_bytes_ = 0;
  NodeMemory node_copy_;
  uint64_t node_copy_bytes_ = 0;
};

}  // namespace dsv4::io

#include "io/checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "core/dtype.h"
#include "core/numa_maps.h"
#include "io/inventory.h"

namespace dsv4::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// A JSON object read from a file of the checkpoint (the index, inference/config.json).
Result<json> read_json_object(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::corrupt_data(path.string() + ": not valid JSON");
  return j;
}

// model.safetensors.index.json's name -> shard map, and its metadata.total_size if given. Returns
// false (and leaves both empty) when the directory has no index.
Result<bool> read_index(const std::string& dir, std::map<std::string, std::string>* weight_map,
                        std::optional<uint64_t>* total_size) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (!fs::exists(index)) return false;
  DSV4_ASSIGN_OR_RETURN(json j, read_json_object(index));
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return Status::corrupt_data(index.string() + ": missing 'weight_map'");
  if (auto md = j.find("metadata"); md != j.end() && md->is_object()) {
    if (auto ts = md->find("total_size"); ts != md->end() && !ts->is_null()) {
      if (!ts->is_number_unsigned())
        return Status::corrupt_data(index.string() + ": metadata.total_size must be a non-negative integer");
      *total_size = ts->get<uint64_t>();
    }
  }
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) return Status::corrupt_data(index.string() + ": weight_map values must be file names");
    const std::string f = it.value().get<std::string>();
    if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
      return Status::corrupt_data(index.string() + ": shard name '" + f + "' must be a plain file name");
    (*weight_map)[it.key()] = f;
  }
  return true;
}

// The shards of an index none of whose tensors `wanted` accepts.
std::set<std::string> shards_without(const std::map<std::string, std::string>& weight_map, const TensorFilter& wanted) {
  std::set<std::string> all, needed;
  for (const auto& [name, file] : weight_map) {
    all.insert(file);
    if (wanted(name)) needed.insert(file);
  }
  std::set<std::string> out;
  std::set_difference(all.begin(), all.end(), needed.begin(), needed.end(), std::inserter(out, out.end()));
  return out;
}

// Shard list: from model.safetensors.index.json if present (weight_map values but those in
// `skip`), else every *.safetensors file in the directory. Also returns the index's name -> shard
// map for checks.
Status list_shards(const std::string& dir, const std::set<std::string>& skip, std::vector<std::string>* shards,
                   std::map<std::string, std::string>* weight_map, std::optional<uint64_t>* total_size) {
  DSV4_ASSIGN_OR_RETURN(const bool indexed, read_index(dir, weight_map, total_size));
  if (indexed) {
    std::set<std::string> files;
    for (const auto& [name, f] : *weight_map)
      if (!skip.count(f)) files.insert(f);
    for (const auto& f : files) {
      const fs::path shard = fs::path(dir) / f;
      if (!fs::exists(shard)) {
        std::string first;
        for (const auto& [name, file] : *weight_map)
          if (file == f) { first = name; break; }
        return Status::not_found(shard.string() + ": shard named in model.safetensors.index.json (for tensor '" +
                                 first + "' and others) does not exist");
      }
      shards->push_back(shard.string());
    }
    return Status::ok_status();
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors") shards->push_back(e.path().string());
  }
  if (ec) return Status::io_error(dir + ": " + ec.message());
  std::sort(shards->begin(), shards->end());
  if (shards->empty()) return Status::not_found(dir + ": no model.safetensors.index.json and no *.safetensors files");
  return Status::ok_status();
}

// addendum §A2.1: a DSpark checkpoint's stage count NS (len(compress_ratios) - num_hidden_layers)
// must equal n_mtp_layers of inference/config.json when that file is there, and the number of
// distinct "mtp.{s}." prefixes among the tensors' names (the index's, when there is one).
// Checked before the inventory, so a disagreement is reported as such rather than as the first
// missing or unknown stage tensor.
Status check_dspark_stage_count(const std::string& dir, const ModelConfig& c, const std::set<std::string>& names) {
  const int64_t ns = c.drafter_blocks();
  const fs::path inference = fs::path(dir) / "inference" / "config.json";
  if (fs::exists(inference)) {
    DSV4_ASSIGN_OR_RETURN(const json j, read_json_object(inference));
    if (auto n = j.find("n_mtp_layers"); n != j.end()) {
      if (!n->is_number_integer() || n->get<int64_t>() != ns)
        return Status::corrupt_data(inference.string() + ": n_mtp_layers " + n->dump() + ", but config.json has " +
                                    std::to_string(ns) + " DSpark stages (len(compress_ratios) - num_hidden_layers)");
    }
  }
  std::set<std::string> prefixes;
  for (const std::string& name : names) {
    if (name.rfind("mtp.", 0) != 0) continue;
    prefixes.insert(name.substr(0, name.find('.', 4) + 1));
  }
  if (int64_t(prefixes.size()) != ns)
    return Status::corrupt_data(dir + ": the tensors have " + std::to_string(prefixes.size()) +
                                " distinct mtp.{s}. prefixes, but config.json has " + std::to_string(ns) +
                                " DSpark stages (len(compress_ratios) - num_hidden_layers)");
  return Status::ok_status();
}

}  // namespace

Result<std::set<std::string>> unneeded_shards(const std::string& dir, const TensorFilter& wanted) {
  if (!wanted) return std::set<std::string>();
  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> total;
  DSV4_TRY(read_index(dir, &weight_map, &total).status());
  return shards_without(weight_map, wanted);
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& dir, const TensorFilter& wanted) {
  if (!fs::is_directory(dir)) return Status::not_found(dir + ": not a directory");
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = dir;
  DSV4_ASSIGN_OR_RETURN(ck->config_, load_config((fs::path(dir) / "config.json").string()));

  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> index_total;
  DSV4_ASSIGN_OR_RETURN(const std::set<std::string> skipped, unneeded_shards(dir, wanted));   // not opened
  DSV4_TRY(list_shards(dir, skipped, &ck->shard_paths_, &weight_map, &index_total));
  for (const auto& path : ck->shard_paths_) {
    DSV4_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
    const std::string base = fs::path(path).filename().string();
    DSV4_ASSIGN_OR_RETURN(auto header, parse_safetensors(mapped->data(), mapped->size(), base));
    for (auto& t : header.tensors) {
      if (ck->tensors_.count(t.name))
        return Status::corrupt_data(base + ": tensor '" + t.name + "': also appears in " + ck->tensors_[t.name].file);
      if (!weight_map.empty()) {
        auto w = weight_map.find(t.name);
        if (w == weight_map.end())
          return Status::corrupt_data(base + ": tensor '" + t.name + "': not listed in model.safetensors.index.json");
        if (w->second != base)
          return Status::corrupt_data(base + ": tensor '" + t.name + "': model.safetensors.index.json places it in " +
                                      w->second);
      }
      ck->tensors_[t.name] = std::move(t);
    }
    ck->shards_.push_back(std::move(mapped));
  }
  for (const auto& [name, file] : weight_map) {
    if (!ck->tensors_.count(name) && !skipped.count(file))
      return Status::corrupt_data(file + ": tensor '" + name +
                                  "': listed in model.safetensors.index.json but absent from this shard");
  }
  // The names of every tensor of the checkpoint: the index's, else the opened shards'.
  std::set<std::string> names;
  for (const auto& [name, file] : weight_map) names.insert(name);
  for (const auto& [name, t] : ck->tensors_) names.insert(name);
  // metadata.total_size counts every shard's tensors: checked when every shard is open.
  if (index_total && skipped.empty() && *index_total != ck->total_bytes())
    return Status::corrupt_data(dir + "/model.safetensors.index.json: metadata.total_size " + std::to_string(*index_total) +
                                " but the shards hold " + std::to_string(ck->total_bytes()) + " tensor bytes");

  if (ck->config_.drafter() == DrafterKind::dspark) DSV4_TRY(check_dspark_stage_count(dir, ck->config_, names));

  // Inventory check (spec §3, v4.1 §3): presence, dtype, shape as the headers spell them; then no unknown
  // tensors. A checked entry takes the inventory's element type and shape (FP4: fp4_e2m1 [rows,
  // cols] for the header's I8 [rows, cols/2]), so nothing past the loader sees the I8 label.
  const auto expected = expected_tensors(ck->config_);
  std::set<std::string> known;
  for (const auto& spec : expected) {
    known.insert(spec.name);
    const TensorSpec stored = stored_form(spec);
    auto it = ck->tensors_.find(spec.name);
    if (it == ck->tensors_.end() && names.count(spec.name)) continue;   // in a shard not opened
    if (it == ck->tensors_.end())
      return Status::not_found(dir + ": tensor '" + spec.name + "': missing (expected " + dtype_name(stored.dtype) +
                               " " + shape_str(stored.shape) + " in some shard)");
    TensorEntry& t = it->second;
    if (t.dtype != stored.dtype)
      return Status::corrupt_data(t.file + ": tensor '" + spec.name + "': dtype " + dtype_name(t.dtype) +
                                  ", expected " + dtype_name(stored.dtype));
    if (t.shape != stored.shape)
      return Status::corrupt_data(t.file + ": tensor '" + spec.name + "': shape " + shape_str(t.shape) +
                                  ", expected " + shape_str(stored.shape));
    t.dtype = spec.dtype;
    t.shape = spec.shape;
  }
  for (const std::string& name : names) {
    if (known.count(name)) continue;
    const std::string file = ck->tensors_.count(name) ? ck->tensors_[name].file : weight_map[name];
    return Status::corrupt_data(file + ": tensor '" + name + "': unknown (not part of a " +
                                architecture_name(ck->config_) + " checkpoint with this config)");
  }
  // The kernels read tensors as arrays of their element type, which must then be aligned. Files
  // written by the safetensors library always are (data_order in safetensors.cpp); one from
  // another writer may not be, and its misaligned tensors are read through an aligned copy.
  for (auto& [name, t] : ck->tensors_) {
    if (t.nbytes() == 0 || reinterpret_cast<uintptr_t>(t.data) % dtype_align(t.dtype) == 0) continue;
    auto& copy = ck->realigned_.emplace_back(new uint8_t[t.nbytes()]);   // new[]: 16-byte aligned
    std::memcpy(copy.get(), t.data, t.nbytes());
    t.data = copy.get();
    ck->realigned_bytes_ += t.nbytes();
  }
  return ck;
}

const TensorEntry& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  DSV4_CHECK(it != tensors_.end());
  return it->second;
}

const TensorEntry* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<uint64_t> Checkpoint::populate(bool reread_small_pages) const {
  for (const auto& f : shards_) DSV4_TRY(f->populate());
  uint64_t reread = 0;
  if (!reread_small_pages) return reread;
  constexpr uint64_t kRereadMinBytes = uint64_t(64) << 20;   // smaller shards are not worth a disk read
  std::ostringstream smaps;
  {
    std::ifstream in("/proc/self/smaps");
    if (!in) return reread;   // nothing to go by
    smaps << in.rdbuf();
  }
  const std::string listing = smaps.str();
  bool probed = false;
  for (const auto& f : shards_) {
    if (f->size() < kRereadMinBytes) continue;
    std::istringstream in(listing);
    const std::optional<uint64_t> huge = f->huge_mapped_bytes(in);
    if (!huge) break;   // the mapping is not in the listing: nothing to go by
    if (f->size() - *huge <= f->size() / 10) continue;   // mostly on 2 MiB pages already
    if (!probed) {
      // 4 MiB first: where the filesystem has no large page-cache folios (or the kernel will not
      // map them with 2 MiB entries), a whole shard would be read again at every load for nothing.
      DSV4_ASSIGN_OR_RETURN(const bool works, f->reread_gives_huge_pages(f->size() / 2));
      if (!works) break;
      probed = true;
    }
    DSV4_TRY(f->reread());
    reread += f->size();
    const std::optional<uint64_t> after = f->huge_mapped_bytes();
    if (!after || f->size() - *after > f->size() / 2) break;   // re-reading does not give 2 MiB pages here
  }
  return reread;
}

Result<uint64_t> Checkpoint::populate_tensors(FunctionRef<bool(const std::string& name)> wanted) const {
  // Byte ranges per shard, sorted and merged where they touch or lie within a page of each
  // other (the headers' alignment padding), so a shard costs few calls and no foreign page.
  constexpr size_t kPage = 4096;
  uint64_t populated = 0;
  for (const auto& f : shards_) {
    std::vector<std::pair<size_t, size_t>> ranges;   // [begin, end) offsets in f
    for (const auto& [name, t] : tensors_) {
      const uint8_t* at = t.data;
      if (t.nbytes() == 0 || at < f->data() || at >= f->data() + f->size()) continue;   // elsewhere or realigned
      if (!wanted(name)) continue;
      const size_t begin = size_t(at - f->data());
      ranges.emplace_back(begin, begin + t.nbytes());
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 0; i < ranges.size();) {
      size_t begin = ranges[i].first, end = ranges[i].second;
      for (++i; i < ranges.size() && ranges[i].first <= end + kPage; ++i) end = std::max(end, ranges[i].second);
      DSV4_TRY(f->populate(begin, end - begin));
      populated += end - begin;
    }
  }
  return populated;
}

Result<uint64_t> Checkpoint::copy_to_node(const NodeCopy& copy) {
  DSV4_CHECK(node_copy_.data() == nullptr);
  // Each tensor at a 64-byte boundary (a cache line: more than any element type needs).
  constexpr uint64_t kAlign = 64;
  std::vector<TensorEntry*> chosen;
  uint64_t size = 0;
  for (auto& [name, t] : tensors_) {
    if (t.nbytes() == 0 || !copy.tensors(name)) continue;
    chosen.push_back(&t);
    size = (size + kAlign - 1) / kAlign * kAlign + t.nbytes();
  }
  if (chosen.empty()) return uint64_t(0);
  DSV4_ASSIGN_OR_RETURN(node_copy_, NodeMemory::allocate(size, copy.node));
  uint64_t at = 0;
  for (TensorEntry* t : chosen) {
    at = (at + kAlign - 1) / kAlign * kAlign;
    const MappedFile* from = nullptr;   // null: a realigned copy
    for (const auto& f : shards_)
      if (t->data >= f->data() && t->data < f->data() + f->size()) from = f.get();
    const size_t offset = from ? size_t(t->data - from->data()) : 0;
    // Faulting the range in first turns a file that shrank into an error, as populate does,
    // rather than a SIGBUS in the copy.
    if (from) DSV4_TRY(from->populate(offset, t->nbytes()));
    std::memcpy(node_copy_.data() + at, t->data, t->nbytes());
    if (from) DSV4_TRY(from->unmap_pages(offset, t->nbytes()));
    t->data = node_copy_.data() + at;
    at += t->nbytes();
  }
  node_copy_bytes_ = at;
  return at;
}

std::optional<std::map<int, uint64_t>> Checkpoint::resident_bytes_per_node() const {
  AddressRanges ranges;
  for (const auto& f : shards_) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(f->data());
    ranges.emplace_back(lo, lo + f->size());
  }
  if (node_copy_.data() != nullptr) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(node_copy_.data());
    ranges.emplace_back(lo, lo + node_copy_.size());
  }
  return dsv4::resident_bytes_per_node(ranges);
}

uint64_t Checkpoint::shard_bytes() const {
  uint64_t n = 0;
  for (const auto& f : shards_) n += f->size();
  return n;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.nbytes();
  return n;
}

}  // namespace dsv4::io

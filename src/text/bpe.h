// Byte-level BPE model (spec §7.1): initial symbols are single bytes, then adjacent pairs are
// merged by merge rank (lowest first, leftmost first on ties) until no pair has a merge.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace dsv4::text {

class BpeModel {
 public:
  // Builds from the "model" object of tokenizer.json (type BPE, byte-level vocabulary).
  // Merges may be stored as "a b" strings or as ["a", "b"] pairs.
  static Result<BpeModel> from_json(const nlohmann::json& model);

  // Appends the ids of one pre-tokenized piece (raw bytes) to out.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  // Raw bytes of vocab entry id (empty when id is not in the vocab).
  const std::string& bytes_of(int32_t id) const;
  bool has_id(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < id_bytes_.size() && id_present_[id]; }
  // Vocab id whose bytes are exactly `bytes`, or -1.
  int32_t id_of_bytes(std::string_view bytes) const;
  // One past the largest vocab id.
  int32_t id_limit() const { return static_cast<int32_t>(id_bytes_.size()); }
  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  void merge_small(std::vector<int32_t>& syms) const;
  void merge_large(std::vector<int32_t>& syms) const;

  std::vector<std::string> id_bytes_;
  std::vector<bool> id_present_;
  std::unordered_map<std::string, int32_t> bytes_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_id_[256];
};

}  // namespace dsv4::text

#include "text/bpe.h"

#include <queue>

#include "text/byte_level.h"

namespace dsv4::text {

Result<BpeModel> BpeModel::from_json(const nlohmann::json& m) {
  if (!m.is_object()) return Status::invalid_argument("tokenizer.json has no \"model\" object");
  if (m.value("type", std::string("BPE")) != "BPE")
    return Status::unsupported("tokenizer model type '" + m.value("type", std::string()) + "' (only BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"] != 0.0)
    return Status::unsupported("BPE dropout");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m[k].is_null() && m[k] != "") return Status::unsupported(std::string("BPE ") + k);
  if (m.value("byte_fallback", false)) return Status::unsupported("BPE byte_fallback");
  if (m.value("ignore_merges", false)) return Status::unsupported("BPE ignore_merges");
  if (!m.contains("vocab") || !m["vocab"].is_object()) return Status::invalid_argument("BPE model without a vocab object");
  if (!m.contains("merges") || !m["merges"].is_array()) return Status::invalid_argument("BPE model without a merges array");

  BpeModel b;
  const auto& vocab = m["vocab"];
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) return Status::invalid_argument("vocab entry '" + it.key() + "' has a non-integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > 16'000'000) return Status::invalid_argument("vocab id out of range for '" + it.key() + "'");
    max_id = std::max(max_id, id);
  }
  b.id_bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
  b.id_present_.assign(static_cast<size_t>(max_id + 1), false);
  b.bytes_to_id_.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    if (b.id_present_[id]) return Status::invalid_argument("vocab id " + std::to_string(id) + " used twice");
    b.id_present_[id] = true;
    auto bytes = byte_level_decode(it.key());
    if (bytes) {
      b.id_bytes_[id] = *bytes;
      b.bytes_to_id_.emplace(std::move(*bytes), id);
    } else {
      // Not spelled in the byte alphabet (the V4 file stores BOS/EOS/pad this way): BPE can
      // never produce it, and it decodes to its literal UTF-8 text.
      b.id_bytes_[id] = it.key();
    }
  }
  for (int c = 0; c < 256; ++c) {
    auto it = b.bytes_to_id_.find(std::string(1, static_cast<char>(c)));
    // A byte-level vocabulary must spell every byte, or some inputs could not be encoded.
    if (it == b.bytes_to_id_.end())
      return Status::invalid_argument("byte-level vocab has no entry for byte " + std::to_string(c));
    b.byte_id_[c] = it->second;
  }

  // Vocab-string -> id, for resolving merges (much faster than nlohmann's std::map lookups).
  std::unordered_map<std::string_view, int32_t> by_string;
  by_string.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    by_string.emplace(it.key(), static_cast<int32_t>(it.value().get<int64_t>()));
  auto lookup = [&](std::string_view s) -> int32_t {
    auto f = by_string.find(s);
    return f == by_string.end() ? -1 : f->second;
  };
  const auto& merges = m["merges"];
  b.merges_.reserve(merges.size() * 2);
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& e = merges[rank];
    std::string left, right;
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size())
        return Status::invalid_argument("merge #" + std::to_string(rank) + " '" + s + "' is not 'a b'");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      left = e[0];
      right = e[1];
    } else {
      return Status::invalid_argument("merge #" + std::to_string(rank) + " is neither a string nor a pair");
    }
    joined.assign(left).append(right);
    const int32_t a = lookup(left), bb = lookup(right), merged = lookup(joined);
    if (a < 0 || bb < 0 || merged < 0)
      return Status::invalid_argument("merge #" + std::to_string(rank) + " uses a token missing from the vocab");
    // The first occurrence of a pair keeps its (lower) rank.
    b.merges_.emplace(pair_key(a, bb), Merge{static_cast<int32_t>(rank), merged});
  }
  return b;
}

const std::string& BpeModel::bytes_of(int32_t id) const {
  static const std::string empty;
  return has_id(id) ? id_bytes_[id] : empty;
}

int32_t BpeModel::id_of_bytes(std::string_view bytes) const {
  auto it = bytes_to_id_.find(std::string(bytes));
  return it == bytes_to_id_.end() ? -1 : it->second;
}

// Quadratic scan: pick the lowest-rank adjacent pair (leftmost on ties), merge, repeat.
// Fastest for the short pieces that make up almost all text.
void BpeModel::merge_small(std::vector<int32_t>& syms) const {
  while (syms.size() > 1) {
    int32_t best_rank = INT32_MAX, best_id = -1;
    size_t best_pos = 0;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      const Merge* mg = find_merge(syms[i], syms[i + 1]);
      if (mg && mg->rank < best_rank) {
        best_rank = mg->rank;
        best_id = mg->id;
        best_pos = i;
      }
    }
    if (best_id < 0) break;
    syms[best_pos] = best_id;
    syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
  }
}

// Same result as merge_small in O(n log n), for long pieces (whitespace runs, long words):
// a min-heap of candidate merges keyed by (rank, position) over a doubly linked symbol list.
// Stale heap entries (a side already merged away) are skipped when popped.
void BpeModel::merge_large(std::vector<int32_t>& syms) const {
  const size_t n = syms.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* mg = find_merge(syms[pos], syms[next[pos]])) heap.push({mg->rank, pos, syms[pos], syms[next[pos]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t r = next[c.pos];
    if (!alive[c.pos] || r < 0 || syms[c.pos] != c.left_id || syms[r] != c.right_id) continue;
    syms[c.pos] = find_merge(c.left_id, c.right_id)->id;
    alive[r] = false;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  thread_local std::vector<int32_t> syms;
  syms.clear();
  for (char ch : piece) syms.push_back(byte_id_[static_cast<uint8_t>(ch)]);
  if (syms.size() <= 48) merge_small(syms);
  else merge_large(syms);
  out.insert(out.end(), syms.begin(), syms.end());
}

}  // namespace dsv4::text

#include "text/tokenizer.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "text/bpe.h"
#include "text/chat_tokens.h"
#include "text/pretokenizer.h"
#include "text/utf8.h"

namespace dsv4::text {

struct Tokenizer::Impl {
  BpeModel bpe;
  PreTokenizer pre;
  std::vector<AddedToken> added;
  std::unique_ptr<AddedTokenMatcher> matcher;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index in added
  std::unordered_map<std::string, int32_t> added_by_content;
  int32_t id_limit = 0;
  // id -> bytes for every id (added tokens override the vocab); unknown ids are flagged false.
  std::vector<std::string_view> id_bytes;
  std::vector<bool> id_known;
  uint64_t uid = 0;  // identifies this tokenizer's entries in the per-thread piece cache
};

namespace {

std::atomic<uint64_t> g_next_uid{1};

Status check_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return Status::ok_status();
  const std::string type = j.value("type", "");
  if (type == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
    for (const auto& n : j["normalizers"]) DSV4_TRY(check_normalizer(n));
    return Status::ok_status();
  }
  // Any real normalization would change which text the added tokens and BPE see.
  return Status::unsupported("normalizer type '" + type + "'");
}

Status check_decoder(const nlohmann::json& j) {
  if (j.is_null()) return Status::ok_status();
  const std::string type = j.value("type", "");
  if (type == "ByteLevel") return Status::ok_status();
  return Status::unsupported("decoder type '" + type + "' (only ByteLevel)");
}

// Per-thread cache of piece -> ids. HF caches BPE words the same way; it makes repeated words
// (most of any real text) one probe. Open addressing over flat arrays (keys and ids live in two
// arenas) keeps a lookup to about two cache lines; the table is simply cleared when it fills.
class PieceCache {
 public:
  static constexpr size_t kSlots = size_t{1} << 17;  // power of two
  static constexpr size_t kMaxEntries = kSlots / 2;

  // Returns the cached ids of piece or nullptr.
  const int32_t* find(std::string_view piece, uint64_t h, uint32_t& count) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& sl = slots_[i];
      if (sl.key_len == 0) return nullptr;
      if (sl.hash == static_cast<uint32_t>(h) && sl.key_len == piece.size() &&
          std::memcmp(keys_.data() + sl.key_off, piece.data(), piece.size()) == 0) {
        count = sl.id_count;
        return ids_.data() + sl.id_off;
      }
    }
  }
  void insert(std::string_view piece, uint64_t h, const int32_t* ids, uint32_t count) {
    if (slots_.empty() || entries_ >= kMaxEntries) clear();
    size_t i = h & (kSlots - 1);
    while (slots_[i].key_len != 0) i = (i + 1) & (kSlots - 1);
    slots_[i] = Slot{static_cast<uint32_t>(h), static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                     static_cast<uint16_t>(piece.size()), static_cast<uint16_t>(count)};
    keys_.append(piece);
    ids_.insert(ids_.end(), ids, ids + count);
    ++entries_;
  }
  void clear() {
    slots_.assign(kSlots, Slot{});
    keys_.clear();
    ids_.clear();
    entries_ = 0;
  }
  uint64_t owner = 0;

 private:
  struct Slot {
    uint32_t hash = 0, key_off = 0, id_off = 0;
    uint16_t key_len = 0, id_count = 0;  // key_len 0 = empty slot (pieces are never empty)
  };
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t entries_ = 0;
};

// FNV-1a: pieces are short, so a simple byte hash is enough.
inline uint64_t piece_hash(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h ^ (h >> 29);
}

}  // namespace

Result<Tokenizer> Tokenizer::from_json_text(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::corrupt_data("tokenizer.json is not a JSON object");
  auto impl = std::make_shared<Impl>();
  DSV4_TRY(check_normalizer(j.value("normalizer", nlohmann::json())));
  DSV4_TRY(check_decoder(j.value("decoder", nlohmann::json())));
  DSV4_ASSIGN_OR_RETURN(impl->pre, PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json())));
  if (!j.contains("model")) return Status::corrupt_data("tokenizer.json has no \"model\"");
  DSV4_ASSIGN_OR_RETURN(impl->bpe, BpeModel::from_json(j["model"]));
  impl->id_limit = impl->bpe.id_limit();
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) return Status::corrupt_data("\"added_tokens\" is not an array");
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        return Status::corrupt_data("added token without integer id and string content");
      AddedToken t;
      const int64_t id = a["id"].get<int64_t>();
      if (id < 0 || id > 16'000'000) return Status::corrupt_data("added token id out of range");
      t.id = static_cast<int32_t>(id);
      t.content = a["content"].get<std::string>();
      t.special = a.value("special", false);
      t.normalized = a.value("normalized", !t.special);
      if (t.content.empty() || !utf8_is_valid(t.content)) return Status::corrupt_data("added token with empty or invalid content");
      if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false))
        return Status::unsupported("added token '" + t.content + "' uses lstrip/rstrip/single_word");
      impl->added_by_id[t.id] = impl->added.size();
      impl->added_by_content.emplace(t.content, t.id);
      impl->id_limit = std::max(impl->id_limit, t.id + 1);
      impl->added.push_back(std::move(t));
    }
  }
  impl->matcher = std::make_unique<AddedTokenMatcher>(impl->added);
  impl->id_bytes.assign(static_cast<size_t>(impl->id_limit), std::string_view());
  impl->id_known.assign(static_cast<size_t>(impl->id_limit), false);
  for (int32_t id = 0; id < impl->bpe.id_limit(); ++id)
    if (impl->bpe.has_id(id)) {
      impl->id_bytes[id] = impl->bpe.bytes_of(id);
      impl->id_known[id] = true;
    }
  for (const auto& t : impl->added) {  // `added` is no longer modified: views stay valid
    impl->id_bytes[t.id] = t.content;
    impl->id_known[t.id] = true;
  }
  impl->uid = g_next_uid.fetch_add(1);
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open tokenizer file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = from_json_text(ss.str());
  if (!r.ok()) return r.status().with_context(path);
  return r;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  thread_local PieceCache cache;
  if (cache.owner != im.uid) {  // another tokenizer used this thread's cache: start over
    cache.clear();
    cache.owner = im.uid;
  }
  auto encode_piece = [&](std::string_view piece) {
    if (piece.size() > 64) {  // long pieces are rare and would bloat the cache
      im.bpe.encode_piece(piece, out);
      return;
    }
    const uint64_t h = piece_hash(piece);
    uint32_t count = 0;
    if (const int32_t* ids = cache.find(piece, h, count)) {
      out.insert(out.end(), ids, ids + count);
      return;
    }
    const size_t before = out.size();
    im.bpe.encode_piece(piece, out);
    cache.insert(piece, h, out.data() + before, static_cast<uint32_t>(out.size() - before));
  };
  auto on_text = [&](std::string_view stretch) {
    // Valid UTF-8 runs go through the regex pre-tokenizer; each invalid byte is its own piece.
    size_t pos = 0;
    while (pos < stretch.size()) {
      const size_t end = utf8_valid_run_end(stretch, pos);
      if (end > pos) im.pre.split(stretch.substr(pos, end - pos), encode_piece);
      if (end < stretch.size()) im.bpe.encode_piece(stretch.substr(end, 1), out);
      pos = end + 1;
    }
  };
  im.matcher->split(text, on_text, [&](int32_t id) { out.push_back(id); });
  return out;
}

std::optional<std::string_view> Tokenizer::token_bytes(int32_t id) const {
  const Impl& im = *impl_;
  if (id < 0 || id >= im.id_limit || !im.id_known[id]) return std::nullopt;
  return im.id_bytes[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids)
    if (auto b = token_bytes(id)) out.append(*b);
  return out;
}

Result<std::string> Tokenizer::decode_checked(std::span<const int32_t> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto b = token_bytes(ids[i]);
    if (!b) return Status::invalid_argument("unknown token id " + std::to_string(ids[i]) + " at position " + std::to_string(i));
    out.append(*b);
  }
  return out;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  const Impl& im = *impl_;
  auto it = im.added_by_content.find(std::string(token));
  if (it != im.added_by_content.end()) return it->second;
  const int32_t id = im.bpe.id_of_bytes(token);
  if (id >= 0) return id;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return impl_->id_limit; }

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
size_t Tokenizer::merge_count() const { return impl_->bpe.merge_count(); }

std::string StreamDecoder::take_complete(bool final) {
  std::string out;
  size_t pos = 0;
  const size_t hold = final ? 0 : utf8_incomplete_tail(pending_);
  const size_t limit = pending_.size() - hold;
  while (pos < limit) {
    const size_t end = std::min(utf8_valid_run_end(pending_, pos), limit);
    out.append(pending_, pos, end - pos);
    pos = end;
    if (pos < limit) {  // a byte that can never start or continue a valid character
      utf8_append(out, 0xFFFD);
      ++pos;
    }
  }
  pending_.erase(0, limit);
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  if (auto b = tok_.token_bytes(id)) pending_.append(*b);
  return take_complete(false);
}

std::string StreamDecoder::finish() { return take_complete(true); }

Result<Tokenizer> load_tokenizer_for_model(const std::string& model_dir, const std::string& fallback_dir) {
  std::error_code ec;
  const std::string own = model_dir + "/tokenizer.json";
  if (!model_dir.empty() && std::filesystem::is_regular_file(own, ec)) return Tokenizer::from_file(own);
  return Tokenizer::from_file(fallback_dir + "/tokenizer.json");
}

std::vector<int32_t> raw_prompt_ids(const Tokenizer& tok, std::string_view text) {
  std::vector<int32_t> ids;
  if (text.substr(0, chat::kBos.size()) != chat::kBos) ids.push_back(tok.token_id(chat::kBos).value_or(0));
  auto rest = tok.encode(text);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

}  // namespace dsv4::text

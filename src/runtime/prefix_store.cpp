#include "runtime/prefix_store.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "core/byte_io.h"
#include "io/integrity.h"

namespace dsv4::runtime {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'D', 'S', 'V', '4', 'K', 'V', 'C', '\n'};
constexpr uint32_t kVersion = 2;   // 2: V4.1 packed entries and Engram history
constexpr size_t kShaHex = 64;
constexpr char kSuffix[] = ".kv";
constexpr int64_t kStaleTempSeconds = 600;

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  io::Sha256 sha;
  sha.update(bytes.data(), bytes.size());
  return sha.hex_digest();
}

// "<depth>-<16 hex>.kv" -> (depth, hash).
bool parse_name(const std::string& name, int64_t* depth, uint64_t* hash) {
  const size_t dash = name.find('-');
  const size_t suffix = sizeof(kSuffix) - 1;
  if (dash == 0 || dash == std::string::npos || name.size() != dash + 1 + 16 + suffix ||
      name.compare(dash + 17, suffix, kSuffix) != 0 || dash > 18)
    return false;
  int64_t d = 0;
  for (size_t i = 0; i < dash; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    d = d * 10 + (name[i] - '0');
  }
  uint64_t h = 0;
  for (size_t i = dash + 1; i < dash + 17; ++i) {
    const char c = name[i];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    h = h << 4 | uint64_t(v);
  }
  *depth = d;
  *hash = h;
  return true;
}

// The whole file, at most max_bytes of it.
Result<std::vector<uint8_t>> read_whole(const std::string& path, uint64_t max_bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::io_error(path + ": " + std::strerror(errno));
  struct stat st {};
  std::vector<uint8_t> bytes;
  Status status;
  if (::fstat(::fileno(f), &st) != 0 || uint64_t(st.st_size) > max_bytes) {
    status = Status::corrupt_data(path + ": larger than the store's cap");
  } else {
    bytes.resize(size_t(st.st_size));
    if (std::fread(bytes.data(), 1, bytes.size(), f) != bytes.size()) status = Status::io_error(path + ": short read");
  }
  std::fclose(f);
  if (!status.ok()) return status;
  return bytes;
}

}  // namespace

Result<std::unique_ptr<PrefixStore>> PrefixStore::open(const Engine& engine, PrefixStoreOptions options) {
  std::unique_ptr<PrefixStore> s(new PrefixStore(engine, std::move(options)));
  DSV4_TRY(s->scan());
  s->writer_ = std::thread([p = s.get()] { p->write_loop(); });
  return s;
}

PrefixStore::~PrefixStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Status PrefixStore::scan() {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return Status::io_error("--kv-cache-dir " + options_.dir + ": " + ec.message());
  fs::directory_iterator it(options_.dir, ec);
  if (ec) return Status::io_error("--kv-cache-dir " + options_.dir + ": " + ec.message());
  std::vector<std::tuple<int64_t, Key, uint64_t>> found;   // mtime, key, bytes
  const int64_t now = int64_t(::time(nullptr));
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::io_error("--kv-cache-dir " + options_.dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    int64_t depth = 0;
    uint64_t hash = 0;
    if (parse_name(name, &depth, &hash)) {
      found.emplace_back(int64_t(st.st_mtime), Key{depth, hash}, uint64_t(st.st_size));
    } else if (name.size() > 4 && name.ends_with(".tmp") && now - int64_t(st.st_mtime) > kStaleTempSeconds) {
      ::unlink(it->path().c_str());
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [mtime, key, bytes] : found) {
    files_[key] = {bytes, ++clock_};
    depths_[key.first] += 1;
    bytes_ += bytes;
  }
  evict_locked();
  return Status::ok_status();
}

namespace {

uint64_t hash_seed(std::string_view fingerprint) {
  return fnv1a(14695981039346656037ull, fingerprint.data(), fingerprint.size());
}

std::string name_of(int64_t depth, uint64_t hash) {
  char name[48];
  std::snprintf(name, sizeof name, "%lld-%016llx%s", (long long)depth, (unsigned long long)hash, kSuffix);
  return name;
}

}  // namespace

std::string PrefixStore::file_name(std::string_view fingerprint, std::span<const int32_t> tokens) {
  return name_of(int64_t(tokens.size()), fnv1a(hash_seed(fingerprint), tokens.data(), tokens.size_bytes()));
}

PrefixStore::Key PrefixStore::key_of(std::span<const int32_t> tokens) const {
  return {int64_t(tokens.size()), fnv1a(hash_seed(options_.fingerprint), tokens.data(), tokens.size_bytes())};
}

std::string PrefixStore::path_of(const Key& k) const {
  return (fs::path(options_.dir) / name_of(k.first, k.second)).string();
}

void PrefixStore::put(std::span<const int32_t> tokens, std::shared_ptr<const Sequence> seq) {
  const Key key = key_of(tokens);
  const uint64_t bytes = seq->memory_bytes();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || files_.count(key) || queued_bytes_ + bytes > options_.max_pending_bytes) return;
    queue_.push_back({std::vector<int32_t>(tokens.begin(), tokens.end()), std::move(seq), bytes});
    queued_bytes_ += bytes;
  }
  cv_.notify_all();
}

void PrefixStore::write_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;   // stopping, and everything queued is written
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    const Status st = write_file(p);
    lock.lock();
    queued_bytes_ -= p.bytes;
    writing_ = false;
    if (st.ok()) written_ += 1;
    idle_cv_.notify_all();
  }
}

Status PrefixStore::write_file(const Pending& p) {
  const Key key = key_of(p.tokens);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.count(key)) return Status::ok_status();
  }
  std::vector<uint8_t> payload;
  DSV4_TRY(engine_.save_sequence(*p.seq, &payload));
  std::vector<uint8_t> header;
  ByteWriter w(header);
  for (char c : kMagic) w.put<char>(c);
  w.put<uint32_t>(kVersion);
  w.put_array<char>(options_.fingerprint);
  w.put_array<int32_t>(p.tokens);
  w.put<uint64_t>(payload.size());
  for (char c : sha256_hex(payload)) w.put<char>(c);
  const uint64_t size = header.size() + payload.size();
  if (size > options_.max_bytes) return Status::resource_exhausted("state file larger than --kv-cache-dir-bytes");

  const std::string path = path_of(key);
  const std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::io_error(tmp + ": " + std::strerror(errno));
  const bool wrote = std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
                     std::fwrite(payload.data(), 1, payload.size(), f) == payload.size();
  if (std::fclose(f) != 0 || !wrote || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::io_error(path + ": write failed");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = files_.try_emplace(key, File{size, ++clock_});
  if (fresh) {
    depths_[key.first] += 1;
    bytes_ += size;
  }
  evict_locked();
  return Status::ok_status();
}

Result<std::unique_ptr<Sequence>> PrefixStore::read_file(const std::string& path, std::span<const int32_t> tokens) {
  DSV4_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, read_whole(path, options_.max_bytes));
  ByteReader r(bytes, path);
  char magic[sizeof kMagic];
  for (char& c : magic) DSV4_TRY(r.get(&c));
  uint32_t version = 0;
  DSV4_TRY(r.get(&version));
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0 || version != kVersion)
    return Status::corrupt_data(path + ": not a state file of this version");
  std::vector<char> fingerprint;
  DSV4_TRY(r.get_array(&fingerprint, options_.fingerprint.size(), "fingerprint"));
  if (!std::equal(fingerprint.begin(), fingerprint.end(), options_.fingerprint.begin()))
    return Status::corrupt_data(path + ": written for another checkpoint");
  std::vector<int32_t> stored;
  DSV4_TRY(r.get_array(&stored, tokens.size(), "tokens"));
  if (!std::equal(stored.begin(), stored.end(), tokens.begin()))
    return Status::corrupt_data(path + ": holds the state of other tokens");
  uint64_t payload_bytes = 0;
  DSV4_TRY(r.get(&payload_bytes));
  char sha[kShaHex];
  for (char& c : sha) DSV4_TRY(r.get(&c));
  if (r.remaining() != payload_bytes) return Status::corrupt_data(path + ": truncated");
  const std::span<const uint8_t> payload(bytes.data() + (bytes.size() - r.remaining()), r.remaining());
  if (sha256_hex(payload) != std::string_view(sha, kShaHex)) return Status::corrupt_data(path + ": checksum mismatch");
  DSV4_ASSIGN_OR_RETURN(std::unique_ptr<Sequence> seq, engine_.load_sequence(payload));
  if (seq->position() != int64_t(tokens.size())) return Status::corrupt_data(path + ": state at the wrong position");
  return seq;
}

PrefixStore::Hit PrefixStore::find(std::span<const int32_t> tokens, int64_t min_depth, int64_t max_depth) {
  max_depth = std::min<int64_t>(max_depth, int64_t(tokens.size()));
  std::vector<int64_t> depths;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = depths_.upper_bound(min_depth); it != depths_.end() && it->first <= max_depth; ++it)
      depths.push_back(it->first);
  }
  if (depths.empty()) return {};
  // The prefix hash at every candidate depth, in one pass over the tokens.
  std::vector<Key> keys;
  uint64_t h = hash_seed(options_.fingerprint);
  int64_t done = 0;
  for (int64_t d : depths) {
    h = fnv1a(h, tokens.data() + done, size_t(d - done) * sizeof(int32_t));
    done = d;
    keys.push_back({d, h});
  }
  for (auto k = keys.rbegin(); k != keys.rend(); ++k) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!files_.count(*k)) continue;
    }
    const std::string path = path_of(*k);
    Result<std::unique_ptr<Sequence>> seq = read_file(path, tokens.first(size_t(k->first)));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(*k);
    if (!seq.ok()) {
      if (it != files_.end()) {
        remove_locked(it);
        refused_ += 1;
      }
      continue;
    }
    if (it != files_.end()) it->second.last_use = ++clock_;
    ::utimes(path.c_str(), nullptr);   // the recency a restart orders the files by
    hits_ += 1;
    return {std::move(seq).value(), k->first};
  }
  return {};
}

void PrefixStore::remove_locked(std::map<Key, File>::iterator it) {
  ::unlink(path_of(it->first).c_str());
  bytes_ -= it->second.bytes;
  if (--depths_[it->first.first] == 0) depths_.erase(it->first.first);
  files_.erase(it);
}

void PrefixStore::evict_locked() {
  while (bytes_ > options_.max_bytes && !files_.empty()) {
    auto oldest = std::min_element(files_.begin(), files_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; });
    remove_locked(oldest);
  }
}

void PrefixStore::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

PrefixStoreStats PrefixStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {uint64_t(files_.size()), bytes_, written_, hits_, refused_};
}

}  // namespace dsv4::runtime

#include "io/integrity.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace dsv4::io {

namespace fs = std::filesystem;
using nlohmann::json;

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  DSV4_CHECK(ctx_ != nullptr);
  DSV4_CHECK(EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) == 1);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(const void* data, size_t n) {
  DSV4_CHECK(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n) == 1);
}
std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  DSV4_CHECK(EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) == 1);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

Result<std::string> sha256_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  constexpr size_t kBlock = 8u << 20;   // large reads: hashing runs at disk speed
  std::vector<uint8_t> buf(kBlock);
  Sha256 h;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), kBlock);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::io_error(path + ": read failed: " + std::strerror(err));
    }
    if (n == 0) break;
    h.update(buf.data(), size_t(n));
  }
  ::close(fd);
  return h.hex_digest();
}

Result<std::vector<ChecksumEntry>> parse_sha256sums(const std::string& text, const std::string& name) {
  std::vector<ChecksumEntry> out;
  std::istringstream in(text);
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = name + ":" + std::to_string(lineno);
    // "<64 hex><space><space or *><file>"
    if (line.size() < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
      return Status::corrupt_data(where + ": expected \"<sha256>  <file>\"");
    ChecksumEntry e;
    e.sha256 = line.substr(0, 64);
    for (char& c : e.sha256) {
      if (c >= 'A' && c <= 'F') c = char(c - 'A' + 'a');
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
        return Status::corrupt_data(where + ": sha256 must be 64 hex digits");
    }
    e.file = line.substr(66);
    const fs::path p(e.file);
    bool dotdot = false;
    for (const auto& part : p) dotdot = dotdot || part == "..";
    if (p.is_absolute() || dotdot)
      return Status::corrupt_data(where + ": file '" + e.file + "' must be a path inside the model directory");
    out.push_back(std::move(e));
  }
  return out;
}

std::string format_sha256sums(const std::vector<ChecksumEntry>& entries) {
  std::string out;
  for (const auto& e : entries) out += e.sha256 + "  " + e.file + "\n";
  return out;
}

std::string verified_cache_path() {
  if (const char* d = std::getenv("DSV4_CACHE_DIR"); d && *d) return (fs::path(d) / "verified.json").string();
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "dsv4" / "verified.json").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "dsv4" / "verified.json").string();
  return "";
}

namespace {

// What the cache compares before trusting a digest. mtime alone is not enough: `touch -r` (or
// utimensat) puts it back after an edit. ctime cannot be set by a user (the kernel stamps it at
// every change, of the data or of the other times), and device + inode catch a file replaced by
// another with the same size and times.
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileId&) const = default;
};

int64_t ns_of(const struct timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

Result<FileId> stat_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::not_found(path + ": listed in SHA256SUMS but missing");
    return Status::io_error(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::io_error(path + ": not a regular file");
  return FileId{uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size), ns_of(st.st_mtim), ns_of(st.st_ctim)};
}

// A file changed within these windows of being hashed is not cached: file times are coarse, so a
// write in the same tick as the hash could leave them unchanged (git's "racy" entries). mtime may
// be as coarse as 2 s (FAT); ctime comes from the kernel's clock, one scheduler tick (<= 10 ms),
// on every filesystem that has one. Such a file is simply hashed again next time.
constexpr int64_t kRacyMtimeWindowNs = 2'000'000'000;
constexpr int64_t kRacyCtimeWindowNs = 100'000'000;

bool old_enough_to_cache(const FileId& id) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t now_ns = ns_of(now);
  return now_ns - id.mtime_ns > kRacyMtimeWindowNs && now_ns - id.ctime_ns > kRacyCtimeWindowNs;
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? fs::absolute(path).lexically_normal().string() : p.string();
}

// verified.json: {"version": 2, "files": {"/abs/path": {"dev", "ino", "size", "mtime_ns", "ctime_ns",
// "sha256"}}}. Entries without every field (version 1 had no dev, ino or ctime) are ignored.
class VerifiedCache {
 public:
  explicit VerifiedCache(bool enabled) : path_(enabled ? verified_cache_path() : "") { load(path_, &files_); }

  // The cached sha256 of `abs` if its device, inode, size, mtime and ctime are unchanged.
  const std::string* lookup(const std::string& abs, const FileId& id) const {
    auto it = files_.find(abs);
    if (it == files_.end() || !(it->second.id == id)) return nullptr;
    return &it->second.sha256;
  }
  void store(const std::string& abs, const FileId& id, const std::string& sha) {
    files_[abs] = {id, sha};
    updated_.insert(abs);
  }
  // Merges our updates into the file on disk (another process may have written it meanwhile),
  // drops entries of files that no longer exist, and replaces the file atomically.
  void save() {
    if (path_.empty() || updated_.empty()) return;
    std::map<std::string, Entry> merged;
    load(path_, &merged);
    for (const auto& abs : updated_) merged[abs] = files_[abs];
    json files = json::object();
    for (const auto& [abs, e] : merged) {
      std::error_code ec;
      if (!fs::exists(abs, ec)) continue;
      files[abs] = {{"dev", e.id.dev},           {"ino", e.id.ino},           {"size", e.id.size},
                    {"mtime_ns", e.id.mtime_ns}, {"ctime_ns", e.id.ctime_ns}, {"sha256", e.sha256}};
    }
    std::error_code ec;
    fs::create_directories(fs::path(path_).parent_path(), ec);
    const std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << json{{"version", 2}, {"files", files}}.dump(1) << "\n";
      if (!out) {
        std::fprintf(stderr, "dsv4: warning: cannot write the verification cache %s\n", tmp.c_str());
        fs::remove(tmp, ec);
        return;
      }
    }
    fs::rename(tmp, path_, ec);
    if (ec) {
      std::fprintf(stderr, "dsv4: warning: cannot update the verification cache %s: %s\n", path_.c_str(),
                   ec.message().c_str());
      fs::remove(tmp, ec);
    }
  }

 private:
  struct Entry {
    FileId id;
    std::string sha256;
  };
  // A missing or unreadable cache is an empty cache: it only ever saves work.
  static void load(const std::string& path, std::map<std::string, Entry>* out) {
    if (path.empty()) return;
    std::ifstream in(path, std::ios::binary);
    if (!in) return;
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    auto files = j.find("files");
    if (files == j.end() || !files->is_object()) return;
    for (auto it = files->begin(); it != files->end(); ++it) {
      const json& e = it.value();
      if (!e.is_object()) continue;
      auto sha = e.find("sha256");
      if (sha == e.end() || !sha->is_string()) continue;
      auto u64 = [&](const char* k, uint64_t* v) {
        auto f = e.find(k);
        if (f == e.end() || !f->is_number_unsigned()) return false;
        *v = f->get<uint64_t>();
        return true;
      };
      auto i64 = [&](const char* k, int64_t* v) {
        auto f = e.find(k);
        if (f == e.end() || !f->is_number_integer()) return false;
        *v = f->get<int64_t>();
        return true;
      };
      FileId id;
      if (u64("dev", &id.dev) && u64("ino", &id.ino) && u64("size", &id.size) && i64("mtime_ns", &id.mtime_ns) &&
          i64("ctime_ns", &id.ctime_ns))
        (*out)[it.key()] = {id, sha->get<std::string>()};
    }
  }

  std::string path_;
  std::map<std::string, Entry> files_;
  std::set<std::string> updated_;
};

struct Hasher {
  VerifiedCache cache;
  const VerifyOptions& opt;
  VerifyReport rep;

  // sha256 of dir/file, from the cache when the file is unchanged (FileId).
  Result<std::string> sha_of(const std::string& path) {
    DSV4_ASSIGN_OR_RETURN(FileId id, stat_file(path));
    const std::string abs = absolute_path(path);
    ++rep.files;
    if (const std::string* sha = cache.lookup(abs, id)) {
      ++rep.cache_hits;
      return *sha;
    }
    const auto t0 = std::chrono::steady_clock::now();
    DSV4_ASSIGN_OR_RETURN(std::string sha, sha256_file(path));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++rep.hashed;
    rep.bytes_hashed += id.size;
    if (opt.progress && id.size >= (256u << 20)) {
      std::fprintf(stderr, "verify: %s: %.2f GiB hashed at %.0f MiB/s\n", path.c_str(),
                   double(id.size) / double(1ull << 30), double(id.size) / double(1 << 20) / std::max(s, 1e-9));
    }
    // Re-stat: a file modified while being hashed must not be cached under its old times.
    auto after = stat_file(path);
    if (after.ok() && *after == id && old_enough_to_cache(id))
      cache.store(abs, id, sha);
    return sha;
  }
  void finish(const std::string& what, double seconds) {
    rep.seconds = seconds;
    cache.save();
    if (opt.progress && rep.hashed == 0) {
      std::fprintf(stderr, "%s: %zu files, all from the verification cache (unchanged since hashed; --no-cache re-hashes)\n",
                   what.c_str(), rep.files);
    } else if (opt.progress) {
      std::fprintf(stderr, "%s: %zu files (%zu hashed, %zu from the verification cache), %.2f GiB hashed in %.1f s (%.0f MiB/s)\n",
                   what.c_str(), rep.files, rep.hashed, rep.cache_hits, double(rep.bytes_hashed) / double(1ull << 30),
                   seconds, double(rep.bytes_hashed) / double(1 << 20) / std::max(seconds, 1e-9));
    }
  }
};

bool must_be_listed(const std::string& name) {
  return fs::path(name).extension() == ".safetensors" || name == "config.json" ||
         name == "model.safetensors.index.json" || name == "tokenizer.json" || name == "tokenizer_config.json";
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<std::string> checkpoint_fingerprint(const std::string& dir) {
  Sha256 sha;
  auto add = [&](const std::string& text) {
    const uint64_t n = text.size();
    sha.update(&n, sizeof n);
    sha.update(text.data(), text.size());
  };
  DSV4_ASSIGN_OR_RETURN(std::string config, read_text((fs::path(dir) / "config.json").string()));
  add(config);
  if (Result<std::string> sums = read_text((fs::path(dir) / "SHA256SUMS").string()); sums.ok()) {
    add("SHA256SUMS");
    add(*sums);
    return sha.hex_digest();
  }
  std::error_code ec;
  std::vector<std::string> shards;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".safetensors") shards.push_back(it->path().string());
  if (ec) return Status::io_error(dir + ": " + ec.message());
  std::sort(shards.begin(), shards.end());
  for (const std::string& path : shards) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::io_error(path + ": " + std::strerror(errno));
    add(fs::path(path).filename().string() + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) +
        "." + std::to_string(st.st_mtim.tv_nsec));
  }
  return sha.hex_digest();
}

Status verify_model_dir(const std::string& dir, const VerifyOptions& opt, VerifyReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string sums_path = (fs::path(dir) / "SHA256SUMS").string();
  if (!fs::is_directory(dir)) return Status::not_found(dir + ": not a directory");
  if (!fs::exists(sums_path))
    return Status::not_found(dir + ": no SHA256SUMS to verify the checkpoint against; run `dsv4 verify --write -m " +
                             dir + "` once to create it, or pass --skip-verify");
  DSV4_ASSIGN_OR_RETURN(std::string text, read_text(sums_path));
  DSV4_ASSIGN_OR_RETURN(auto entries, parse_sha256sums(text, sums_path));

  Hasher h{VerifiedCache(opt.use_cache), opt, {}};
  std::vector<Status> problems;
  std::set<std::string> listed;
  for (const auto& e : entries) {
    listed.insert(fs::path(e.file).lexically_normal().string());
    if (opt.skip_files.count(e.file)) continue;
    const std::string path = (fs::path(dir) / e.file).string();
    auto sha = h.sha_of(path);
    if (!sha.ok()) {
      problems.push_back(sha.status());
    } else if (*sha != e.sha256) {
      problems.push_back(Status::corrupt_data(path + ": sha256 mismatch (SHA256SUMS says " + e.sha256 + ", file has " +
                                              *sha + "): the file is corrupt or was changed"));
    }
  }
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const std::string name = de.path().filename().string();
    if (de.is_regular_file() && must_be_listed(name) && !listed.count(name))
      problems.push_back(Status::corrupt_data(de.path().string() +
                                              ": not listed in SHA256SUMS (run `dsv4 verify --write` to add it)"));
  }
  h.finish("verify", seconds_since(t0));
  if (report) *report = h.rep;
  if (problems.empty()) return Status::ok_status();
  std::string msg = problems[0].message();
  if (problems.size() > 1) {
    if (opt.progress)
      for (const auto& p : problems) std::fprintf(stderr, "verify: %s\n", p.message().c_str());
    msg += " (and " + std::to_string(problems.size() - 1) + " more problems)";
  }
  return {problems[0].code(), msg};
}

Status write_sha256sums(const std::string& dir, const VerifyOptions& opt, VerifyReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!fs::is_directory(dir)) return Status::not_found(dir + ": not a directory");
  const std::string sums_path = (fs::path(dir) / "SHA256SUMS").string();
  std::vector<std::string> files;
  std::set<std::string> seen;
  if (fs::exists(sums_path)) {   // keep the existing order, drop files that are gone
    DSV4_ASSIGN_OR_RETURN(std::string text, read_text(sums_path));
    DSV4_ASSIGN_OR_RETURN(auto entries, parse_sha256sums(text, sums_path));
    for (const auto& e : entries)
      if (fs::exists(fs::path(dir) / e.file) && seen.insert(e.file).second) files.push_back(e.file);
  }
  std::vector<std::string> added;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const std::string name = de.path().filename().string();
    if (!de.is_regular_file() || name == "SHA256SUMS" || name.empty() || name[0] == '.') continue;
    if (seen.insert(name).second) added.push_back(name);
  }
  if (ec) return Status::io_error(dir + ": " + ec.message());
  std::sort(added.begin(), added.end());
  files.insert(files.end(), added.begin(), added.end());

  Hasher h{VerifiedCache(opt.use_cache), opt, {}};
  std::vector<ChecksumEntry> entries;
  for (const auto& f : files) {
    DSV4_ASSIGN_OR_RETURN(std::string sha, h.sha_of((fs::path(dir) / f).string()));
    entries.push_back({sha, f});
  }
  const std::string tmp = sums_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << format_sha256sums(entries);
    if (!out) return Status::io_error(tmp + ": write failed");
  }
  fs::rename(tmp, sums_path, ec);
  if (ec) return Status::io_error(sums_path + ": cannot replace: " + ec.message());
  h.finish("verify --write", seconds_since(t0));
  if (report) *report = h.rep;
  return Status::ok_status();
}

void remember_verified(const std::vector<std::pair<std::string, std::string>>& files) {
  VerifiedCache cache(true);
  for (const auto& [path, sha] : files) {
    auto id = stat_file(path);
    if (id.ok() && old_enough_to_cache(*id)) cache.store(absolute_path(path), *id, sha);
  }
  cache.save();
}

Status ensure_verified(const std::string& model_dir, bool skip_verify, VerifyReport* report,
                       const std::set<std::string>& skip_files) {
  if (skip_verify) return Status::ok_status();
  VerifyOptions opt;
  opt.skip_files = skip_files;
  Status s = verify_model_dir(model_dir, opt, report);
  if (!s.ok() && s.code() != StatusCode::not_found) {
    return {s.code(), s.message() + "; re-download the file, or run `dsv4 verify --write -m " + model_dir +
                          "` if the change is intended, or pass --skip-verify"};
  }
  return s;
}

}  // namespace dsv4::io

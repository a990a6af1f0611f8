// Checkpoint integrity: sha256 of every file listed in DIR/SHA256SUMS (the format of
// `sha256sum`: "<64 hex>  <name>" per line), with a cache of verified files so a 160 GB model is
// hashed once, not at every start. A cache entry is trusted while the file's device, inode, size,
// mtime and ctime are unchanged; anything else is re-hashed. ctime is what catches an edit whose
// mtime was put back (`touch -r`): no user can set it. Files changed less than 2 s (mtime) or
// 0.1 s (ctime) before they were hashed are not cached, since a second write within the same
// file-time tick would not change the times. `dsv4 verify --no-cache` re-hashes everything.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace dsv4::io {

// Incremental sha256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex_digest();   // finishes; the object is then spent

 private:
  void* ctx_;   // EVP_MD_CTX*
};

// sha256 of a whole file, read in 8 MiB blocks.
Result<std::string> sha256_file(const std::string& path);

struct ChecksumEntry {
  std::string sha256;   // 64 lowercase hex digits
  std::string file;     // relative to the model directory
};
// Parses SHA256SUMS text ("hash  name" or "hash *name"; blank lines ignored). `name` is used in
// messages. Names must be relative and must not contain "..".
Result<std::vector<ChecksumEntry>> parse_sha256sums(const std::string& text, const std::string& name);
std::string format_sha256sums(const std::vector<ChecksumEntry>& entries);

struct VerifyOptions {
  bool use_cache = true;
  bool progress = true;   // per-file lines for large files and a summary on stderr
  // Files listed in SHA256SUMS that are neither checked nor required (a process that maps only
  // some shards, io::unneeded_shards: the others need not be on its node).
  std::set<std::string> skip_files;
};

struct VerifyReport {
  size_t files = 0;          // files checked
  size_t hashed = 0;         // files actually read and hashed
  size_t cache_hits = 0;     // files accepted from the cache (unchanged since they were hashed)
  uint64_t bytes_hashed = 0;
  double seconds = 0;
};

// The cache file: $DSV4_CACHE_DIR/verified.json, else $XDG_CACHE_HOME/dsv4/verified.json, else
// $HOME/.cache/dsv4/verified.json; "" if none of these is set.
std::string verified_cache_path();

// Checks every file listed in DIR/SHA256SUMS, and that every shard, config and tokenizer file in
// DIR is listed. Errors name the file: missing list, missing file, sha256 mismatch, unlisted file.
Status verify_model_dir(const std::string& dir, const VerifyOptions& opt, VerifyReport* report = nullptr);

// Creates or updates DIR/SHA256SUMS: the files already listed plus every regular file of DIR.
Status write_sha256sums(const std::string& dir, const VerifyOptions& opt, VerifyReport* report = nullptr);

// Records files whose sha256 the caller computed itself (e.g. while writing them) as verified
// (those older than the 2 s window above; the rest are hashed on their first verification).
// `files` holds (path, sha256) pairs; failures to write the cache are ignored (it is a cache).
void remember_verified(const std::vector<std::pair<std::string, std::string>>& files);

// A name for the checkpoint in DIR that changes whenever its weights or config may have:
// sha256 (hex) over config.json and SHA256SUMS when the directory has one (it lists every
// file's hash, checked at start unless --skip-verify), else over config.json and the name, size
// and mtime of every .safetensors file. The prefix cache's state files carry it
// (runtime/prefix_store.h), so that no state is ever resumed on other weights.
// Errors: config.json cannot be read.
Result<std::string> checkpoint_fingerprint(const std::string& dir);

// What `run`/`serve` call at start: OK if skip_verify, or if every listed file matches (from the
// cache when unchanged, else re-hashed). Without SHA256SUMS the error tells the
// user to run `dsv4 verify --write -m DIR` or to pass --skip-verify.
// `skip_files` as in VerifyOptions.
Status ensure_verified(const std::string& model_dir, bool skip_verify, VerifyReport* report = nullptr,
                       const std::set<std::string>& skip_files = {});

}  // namespace dsv4::io

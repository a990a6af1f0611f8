// The prefix cache on disk (`dsv4 serve --kv-cache-dir`): the scheduler's state snapshots,
// written to files so that a restarted server resumes agent sessions where they were.
//
// A file holds the state after one token prefix, and is named by it: "<depth>-<hash>.kv",
// hash = 64-bit FNV-1a over the checkpoint fingerprint and the prefix's token ids. Its header
// repeats what it is for, and is checked against what the caller looks for before anything is
// trusted (all fields in host byte order):
//   magic "DSV4KVC\n" | u32 version | u32 fingerprint length | fingerprint bytes |
//   u64 token count | i32 tokens[] | u64 payload bytes | 64 hex sha256 of the payload | payload
// The payload is Engine::save_sequence's bytes, which Engine::load_sequence validates against
// the model. A file that fails any check (foreign, stale after a format change, truncated,
// corrupt) is refused and removed; it is never trusted and never a crash.
//
// Files are written by a thread of the store's own, to "<name>.<pid>.tmp" and renamed into place,
// so a reader never sees half a file. Snapshots wait for it in a queue of bounded bytes (a
// snapshot that does not fit is not written). The files' total size is capped: the least
// recently used go first (use is kept in the files' mtime, so it survives a restart). At open,
// files of this naming are indexed, and temporary files older than ten minutes (left by a
// crash) removed.
//
// Thread-safety: put() and find() may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"

namespace dsv4::runtime {

struct PrefixStoreOptions {
  std::string dir;                       // created if missing
  uint64_t max_bytes = uint64_t(16) << 30;   // files' total size
  // Identifies the checkpoint and engine the states belong to (io::checkpoint_fingerprint,
  // plus whether the engine drafts): part of every file's name and header.
  std::string fingerprint;
  uint64_t max_pending_bytes = uint64_t(1) << 30;  // snapshots waiting to be written
};

struct PrefixStoreStats {
  uint64_t files = 0, bytes = 0;   // on disk now
  uint64_t written = 0, hits = 0;
  uint64_t refused = 0;            // files that failed a check and were removed
};

class PrefixStore {
 public:
  // Errors: the directory cannot be created or read. `engine` must outlive the store.
  static Result<std::unique_ptr<PrefixStore>> open(const Engine& engine, PrefixStoreOptions options);
  ~PrefixStore();   // writes what is queued, then stops its thread
  PrefixStore(const PrefixStore&) = delete;
  PrefixStore& operator=(const PrefixStore&) = delete;

  // Queues `seq`, the state after `tokens`, to be written, unless a file holds that prefix
  // already or the queue is full.
  void put(std::span<const int32_t> tokens, std::shared_ptr<const Sequence> seq);

  struct Hit {
    std::unique_ptr<Sequence> seq;   // null: no file matches
    int64_t depth = 0;
  };
  // The deepest stored state after a prefix of `tokens` whose length is in
  // (min_depth, max_depth]; the file becomes the most recently used.
  Hit find(std::span<const int32_t> tokens, int64_t min_depth, int64_t max_depth);

  // The name of the file that holds the state after `tokens` (in the store's directory).
  static std::string file_name(std::string_view fingerprint, std::span<const int32_t> tokens);

  // Waits until every queued snapshot is written (tests, benchmarks).
  void flush();
  PrefixStoreStats stats() const;

 private:
  struct File {
    uint64_t bytes = 0;
    uint64_t last_use = 0;   // larger = more recent
  };
  using Key = std::pair<int64_t, uint64_t>;   // depth, hash
  struct Pending {
    std::vector<int32_t> tokens;
    std::shared_ptr<const Sequence> seq;
    uint64_t bytes = 0;
  };

  PrefixStore(const Engine& engine, PrefixStoreOptions options) : engine_(engine), options_(std::move(options)) {}
  Status scan();
  void write_loop();
  Status write_file(const Pending& p);
  Result<std::unique_ptr<Sequence>> read_file(const std::string& path, std::span<const int32_t> tokens);
  Key key_of(std::span<const int32_t> tokens) const;
  std::string path_of(const Key& k) const;
  void remove_locked(std::map<Key, File>::iterator it);
  void evict_locked();

  const Engine& engine_;
  const PrefixStoreOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::map<Key, File> files_;
  std::map<int64_t, int> depths_;   // depth -> files of that depth
  uint64_t bytes_ = 0, clock_ = 0;
  std::deque<Pending> queue_;
  uint64_t queued_bytes_ = 0;
  bool writing_ = false, stopping_ = false;
  uint64_t written_ = 0, hits_ = 0, refused_ = 0;
  std::thread writer_;
};

}  // namespace dsv4::runtime

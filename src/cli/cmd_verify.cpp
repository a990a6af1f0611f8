// `dsv4 verify -m DIR [--write]`: check (or record) the sha256 of every checkpoint file against
// DIR/SHA256SUMS; verified files are cached so `run`/`serve` start without re-hashing.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "io/integrity.h"

namespace dsv4::cli {

int cmd_verify(int argc, char** argv) {
  CLI::App app{"Verify a checkpoint directory against its SHA256SUMS (or write it with --write)"};
  std::string dir;
  bool write = false, no_cache = false;
  app.add_option("-m,--model", dir, "checkpoint directory")->required();
  app.add_flag("--write", write, "create or update DIR/SHA256SUMS from the files in DIR");
  app.add_flag("--no-cache", no_cache, "re-hash every file even if it is unchanged since its last verification");
  CLI11_PARSE(app, argc, argv);
  io::VerifyOptions opt;
  opt.use_cache = !no_cache;
  io::VerifyReport rep;
  Status s = write ? io::write_sha256sums(dir, opt, &rep) : io::verify_model_dir(dir, opt, &rep);
  if (!s.ok()) {
    std::fprintf(stderr, "dsv4: %s\n", s.to_string().c_str());
    return 1;
  }
  // Say which results rest on the cache rather than on reading the files now.
  std::string cached;
  if (rep.cache_hits > 0)
    cached = " (" + std::to_string(rep.cache_hits) + " of them from the verification cache: unchanged since hashed; " +
             "--no-cache re-hashes them)";
  std::printf("%s: %zu files %s%s\n", dir.c_str(), rep.files, write ? "recorded in SHA256SUMS" : "match SHA256SUMS",
              cached.c_str());
  return 0;
}

}  // namespace dsv4::cli

#include "cli/data_dir.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace dsv4::cli {

namespace fs = std::filesystem;

Result<std::string> data_dir() {
  std::error_code ec;
  if (const char* env = std::getenv("DSV4_DATA_DIR"); env && *env) {
    if (fs::is_directory(env, ec)) return std::string(env);
    return Status::not_found(std::string("DSV4_DATA_DIR=") + env + " is not a directory");
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Status::io_error("cannot locate the dsv4 executable: " + ec.message());
  const fs::path candidates[] = {exe.parent_path() / "share" / "dsv4",
                                 exe.parent_path().parent_path() / "share" / "dsv4"};
  for (const fs::path& c : candidates)
    if (fs::is_directory(c / "tokenizer", ec)) return c.string();
  return Status::not_found("no dsv4 data directory (tokenizer, demo model) at " + candidates[0].string() + " or " +
                           candidates[1].string() + "; install with `cmake --install` or set DSV4_DATA_DIR");
}

Result<std::string> vendored_tokenizer_dir() {
  DSV4_ASSIGN_OR_RETURN(std::string root, data_dir());
  return root + "/tokenizer";
}

Result<std::string> demo_model_dir() {
  DSV4_ASSIGN_OR_RETURN(std::string root, data_dir());
  return root + "/models/dsv4-demo";
}

Result<text::Tokenizer> load_cli_tokenizer(const std::string& tokenizer_file, const std::string& model_dir) {
  if (!tokenizer_file.empty()) return text::Tokenizer::from_file(tokenizer_file);
  DSV4_ASSIGN_OR_RETURN(std::string vendored, vendored_tokenizer_dir());
  return text::load_tokenizer_for_model(model_dir, vendored);
}

}  // namespace dsv4::cli

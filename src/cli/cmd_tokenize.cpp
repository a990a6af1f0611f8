// `dsv4 tokenize`: JSON Lines {"text": ...} -> {"ids": [...]} (or, with --decode,
// {"ids": [...]} -> {"text": ...}) with the V4 tokenizer (spec §7.1).
// `dsv4 tokenize --bench`: encode throughput in MB/s, one thread and all threads, on a
// multi-megabyte mixed text assembled at run time (see bench/README.md).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "cli/data_dir.h"
#include "cli/jsonl.h"
#include "text/tokenizer.h"

namespace dsv4::cli {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Mixed text: from a dsv4 source tree `source_root` (--bench-source), the multilingual / edge-case
// strings of the shared tokenizer vectors beside it, the official chat golden prompts and the
// tree's C++ sources and docs; and any --bench-corpus files.
// Lines are shuffled on each repetition up to the target size, so the text is not one block
// repeated verbatim.
std::string bench_corpus(size_t target_bytes, const std::string& source_root, const std::vector<std::string>& extra) {
  namespace fs = std::filesystem;
  const fs::path root = source_root.empty() ? fs::path("/nonexistent") : fs::path(source_root);
  std::vector<std::string> lines;
  auto add_text = [&](const std::string& t) {
    std::stringstream ss(t);
    std::string line;
    while (std::getline(ss, line)) lines.push_back(line + "\n");
  };
  const fs::path vectors = root / ".." / "shared" / "data" / "dsv4-vectors" / "tokenizer-vectors-public.json";
  std::error_code ec;
  if (fs::exists(vectors, ec)) {
    auto j = nlohmann::json::parse(read_file(vectors), nullptr, false);
    if (!j.is_discarded() && j.contains("cases"))
      for (const auto& c : j["cases"])
        if (c.contains("text") && c["text"].is_string()) add_text(c["text"].get<std::string>());
  }
  const fs::path golden = root / ".." / "shared" / "data" / "dsv4-tokenizer" / "encoding-tests";
  for (int n = 1; n <= 4; ++n) {
    const fs::path p = golden / ("test_output_" + std::to_string(n) + ".txt");
    if (fs::exists(p, ec)) add_text(read_file(p));
  }
  for (const char* dir : {"src", "docs", "tests"}) {
    if (!fs::exists(root / dir, ec)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / dir, ec)) {
      const auto ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".h" || ext == ".md")) add_text(read_file(e.path()));
    }
  }
  for (const auto& f : extra) add_text(read_file(f));
  std::string out;
  if (lines.empty()) return out;
  std::mt19937 rng(42);
  while (out.size() < target_bytes) {
    std::shuffle(lines.begin(), lines.end(), rng);
    for (const auto& l : lines) out += l;
  }
  return out;
}

// Splits text at line ends into n chunks of roughly equal size.
std::vector<std::string_view> split_chunks(std::string_view text, size_t n) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 1; i <= n && start < text.size(); ++i) {
    size_t end = i == n ? text.size() : text.size() * i / n;
    end = std::min(text.size(), text.find('\n', end) == std::string_view::npos ? text.size() : text.find('\n', end) + 1);
    if (end <= start) continue;
    out.push_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

int run_bench(const text::Tokenizer& tok, double megabytes, int threads, const std::string& source_root,
              const std::vector<std::string>& extra) {
  const std::string corpus = bench_corpus(static_cast<size_t>(megabytes * 1e6), source_root, extra);
  if (corpus.empty()) {
    std::fprintf(stderr, "dsv4 tokenize --bench: no corpus text found (give --bench-source DIR or --bench-corpus FILE)\n");
    return 1;
  }
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const double mb = static_cast<double>(corpus.size()) / 1e6;
  std::printf("corpus: %.2f MB mixed text (multilingual vectors, chat prompts, C++ sources)\n", mb);
  // Wall time of the whole run, plus the summed CPU time of the encoding threads: on a shared
  // machine the wall figure depends on other load, MB per CPU-second is the per-core speed.
  auto time_run = [&](int nthreads, size_t& tokens, double& cpu_s) {
    const auto chunks = split_chunks(corpus, static_cast<size_t>(nthreads));
    std::vector<size_t> counts(chunks.size());
    std::vector<double> cpu(chunks.size());
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (size_t i = 0; i < chunks.size(); ++i)
      pool.emplace_back([&, i] {
        timespec a{}, b{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        counts[i] = tok.encode(chunks[i]).size();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        cpu[i] = static_cast<double>(b.tv_sec - a.tv_sec) + 1e-9 * static_cast<double>(b.tv_nsec - a.tv_nsec);
      });
    for (auto& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tokens = 0;
    cpu_s = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      tokens += counts[i];
      cpu_s += cpu[i];
    }
    return s;
  };
  for (int nthreads : {1, threads}) {
    double best = 1e30, best_cpu = 1e30;
    size_t tokens = 0;
    for (int rep = 0; rep < 3; ++rep) {
      double cpu_s = 0;
      best = std::min(best, time_run(nthreads, tokens, cpu_s));
      best_cpu = std::min(best_cpu, cpu_s);
    }
    std::printf("encode, %d thread%s: %.1f MB/s wall (%.2f s), %.1f MB per CPU-second; %zu tokens, %.2f bytes/token\n",
                nthreads, nthreads == 1 ? "" : "s", mb / best, best, mb / best_cpu, tokens,
                static_cast<double>(corpus.size()) / tokens);
    if (threads == 1) break;
  }
  // Decode speed for reference (single thread).
  const auto ids = tok.encode(corpus);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string back = tok.decode(ids);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("decode, 1 thread: %.1f MB/s, round trip %s\n", mb / s, back == corpus ? "exact" : "MISMATCH");
  return back == corpus ? 0 : 1;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Tokenize JSON Lines {\"text\"} -> {\"ids\"} (or --decode the reverse) with the DeepSeek-V4 tokenizer"};
  std::string tokenizer_file, model_dir;
  bool decode = false, bench = false;
  double bench_mb = 8.0;
  int threads = 0;
  std::vector<std::string> corpus_files;
  std::string bench_source;
  app.add_option("--tokenizer", tokenizer_file, "tokenizer.json (default: the model's, else the vendored official one)");
  app.add_option("-m,--model", model_dir, "model directory; its tokenizer.json is used when present");
  app.add_flag("--decode", decode, "read {\"ids\": [...]} and write {\"text\": ...}");
  app.add_flag("--bench", bench, "measure encode throughput instead of reading stdin");
  app.add_option("--bench-mb", bench_mb, "benchmark corpus size in MB")->check(CLI::Range(0.01, 1000.0));
  app.add_option("--bench-corpus", corpus_files, "extra text files for the benchmark corpus")->check(CLI::ExistingFile);
  app.add_option("--bench-source", bench_source,
                 "a dsv4 source tree whose sources, docs and ../shared vectors make the benchmark corpus")
      ->check(CLI::ExistingDirectory);
  app.add_option("--threads", threads, "threads for the benchmark (default: all cores)");
  CLI11_PARSE(app, argc, argv);

  auto loaded = load_cli_tokenizer(tokenizer_file, model_dir);
  if (!loaded.ok()) {
    std::fprintf(stderr, "dsv4: %s\n", loaded.status().to_string().c_str());
    return 2;
  }
  const text::Tokenizer tok = std::move(loaded).value();
  if (bench) return run_bench(tok, bench_mb, threads, bench_source, corpus_files);

  if (decode) {
    return run_jsonl("tokenize --decode", [&](const nlohmann::ordered_json& in) -> Result<nlohmann::ordered_json> {
      if (!in.contains("ids") || !in["ids"].is_array()) return Status::invalid_argument("missing array \"ids\"");
      std::vector<int32_t> ids;
      for (const auto& v : in["ids"]) {
        if (!v.is_number_integer()) return Status::invalid_argument("ids must be integers");
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id >= tok.vocab_size()) return Status::invalid_argument("token id " + std::to_string(id) + " out of range");
        ids.push_back(static_cast<int32_t>(id));
      }
      DSV4_ASSIGN_OR_RETURN(std::string t, tok.decode_checked(ids));
      return nlohmann::ordered_json{{"text", t}};
    });
  }
  return run_jsonl("tokenize", [&](const nlohmann::ordered_json& in) -> Result<nlohmann::ordered_json> {
    if (!in.contains("text") || !in["text"].is_string()) return Status::invalid_argument("missing string \"text\"");
    return nlohmann::ordered_json{{"ids", tok.encode(in["text"].get<std::string>())}};
  });
}

}  // namespace dsv4::cli

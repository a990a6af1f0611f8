#include "runtime/world_engine.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/numa_topology.h"
#include "io/config.h"
#include "io/inventory.h"
#include "runtime/numa_placement.h"

namespace dsv4::runtime {

namespace {

// The words of the lockstep protocol (world_engine.h): an operation code, then its operands.
enum class Op : int64_t {
  new_sequence = 1,  // id
  clone,             // source id, new id
  reserve,           // id, positions
  free,              // id
  step,              // n, then per sequence: id, feed, length; then every sequence's tokens
  commit,            // id, keep
  draft,             // id, anchor, max_tokens, confidence_threshold (f32 bits)
  fill_synthetic,    // id, depth, seed
  load_sequence,     // id, byte count, then the bytes, 8 to a word
  figures,           // (then a gather of RankFigures)
  stop,
};

double proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return double(std::stoll(line.substr(key.size()))) * 1024.0;
  return 0;
}

// RankFigures as words of a gather (the same count on every rank), and back: the memory (2), the
// exchange tallies (2 x 5), kFigureNodes (node id, bytes) pairs of the weights' placement (unused
// pairs with id -1; a rank's weights on more nodes than that, never when bound to one, drop the
// rest), the rank's node.
constexpr size_t kFigureNodes = 8;

std::vector<double> figures_words(const MpiExpertSplit* split, const Engine& engine) {
  std::vector<double> w = {proc_status_bytes("VmRSS:"), proc_status_bytes("RssFile:")};
  const ExchangeCounters c = split ? split->counters() : ExchangeCounters{};
  for (const ExchangeTally& t : {c.one_row, c.many_rows})
    w.insert(w.end(), {double(t.calls), double(t.rows), t.bytes_in, t.bytes_out, t.seconds});
  const std::map<int, uint64_t> nodes = engine.weight_bytes_per_node();
  size_t k = 0;
  for (auto it = nodes.begin(); it != nodes.end() && k < kFigureNodes; ++it, ++k)
    w.insert(w.end(), {double(it->first), double(it->second)});
  for (; k < kFigureNodes; ++k) w.insert(w.end(), {-1.0, 0.0});
  Result<int> node = process_numa_node();
  w.push_back(node.ok() ? double(*node) : -1.0);
  return w;
}

RankFigures figures_from_words(const double* w) {
  RankFigures f;
  f.rss_bytes = w[0];
  f.rss_file_bytes = w[1];
  ExchangeTally* tallies[] = {&f.exchange.one_row, &f.exchange.many_rows};
  for (int k = 0; k < 2; ++k) {
    const double* t = w + 2 + 5 * k;
    *tallies[k] = {int64_t(t[0]), int64_t(t[1]), t[2], t[3], t[4]};
  }
  const double* nodes = w + 2 + 2 * 5;
  for (size_t k = 0; k < kFigureNodes; ++k)
    if (nodes[2 * k] >= 0) f.weight_node_bytes[int(nodes[2 * k])] = uint64_t(nodes[2 * k + 1]);
  f.numa_node = int(nodes[2 * kFigureNodes]);
  return f;
}

// ---- rank 0 ----

// Sequence operations recorded on rank 0, sent ahead of the next engine call. Shared by the
// engine and its sequences, which may outlive it.
struct Ledger {
  std::mutex mu;
  std::vector<int64_t> words;
  int64_t next_id = 0;

  int64_t record_new(Op op, int64_t source = -1) {
    std::lock_guard<std::mutex> lock(mu);
    const int64_t id = next_id++;
    if (op == Op::clone)
      words.insert(words.end(), {int64_t(op), source, id});
    else
      words.insert(words.end(), {int64_t(op), id});
    return id;
  }
  void record(Op op, int64_t id, int64_t operand = 0) {
    std::lock_guard<std::mutex> lock(mu);
    words.push_back(int64_t(op));
    words.push_back(id);
    if (op == Op::reserve) words.push_back(operand);
  }
  // A sequence made from Engine::save_sequence's bytes: the bytes travel with the operation.
  int64_t record_load(std::span<const uint8_t> bytes) {
    std::lock_guard<std::mutex> lock(mu);
    const int64_t id = next_id++;
    words.insert(words.end(), {int64_t(Op::load_sequence), id, int64_t(bytes.size())});
    const size_t at = words.size();
    words.resize(at + (bytes.size() + 7) / 8, 0);
    std::memcpy(words.data() + at, bytes.data(), bytes.size());
    return id;
  }
  // The recorded words appended to `out`, the ledger emptied.
  void take(std::vector<int64_t>& out) {
    std::lock_guard<std::mutex> lock(mu);
    out.insert(out.end(), words.begin(), words.end());
    words.clear();
  }
};

class LeaderSequence final : public Sequence {
 public:
  LeaderSequence(std::shared_ptr<Ledger> ledger, int64_t id, std::unique_ptr<Sequence> local)
      : ledger_(std::move(ledger)), id_(id), local_(std::move(local)) {}
  ~LeaderSequence() override { ledger_->record(Op::free, id_); }
  int64_t position() const override { return local_->position(); }
  std::unique_ptr<Sequence> clone() const override {
    const int64_t id = ledger_->record_new(Op::clone, id_);
    return std::make_unique<LeaderSequence>(ledger_, id, local_->clone());
  }
  size_t memory_bytes() const override { return local_->memory_bytes(); }
  void reserve(int64_t positions) override {
    local_->reserve(positions);
    ledger_->record(Op::reserve, id_, positions);
  }
  int64_t id() const { return id_; }
  Sequence& local() const { return *local_; }

 private:
  std::shared_ptr<Ledger> ledger_;
  int64_t id_;
  std::unique_ptr<Sequence> local_;
};

// Rank 0's draft choices, sent to the other ranks as they are made (the drafter's next slot
// depends on them).
class LeaderChooser final : public DraftChooser {
 public:
  LeaderChooser(const World& world, DraftChooser& chooser) : world_(world), chooser_(chooser) {}
  int32_t choose(int i, std::span<const float> z) override {
    return int32_t(world_.broadcast(int64_t(chooser_.choose(i, z))));
  }

 private:
  const World& world_;
  DraftChooser& chooser_;
};

class FollowerChooser final : public DraftChooser {
 public:
  explicit FollowerChooser(const World& world) : world_(world) {}
  int32_t choose(int, std::span<const float>) override { return int32_t(world_.broadcast(int64_t(0))); }

 private:
  const World& world_;
};

class LeaderEngine final : public Engine {
 public:
  // `index`: this engine's place among the engines of the launch (load_engines_on_world), the
  // first word of each of its calls.
  LeaderEngine(World& world, int64_t index, std::unique_ptr<Engine> local, const MpiExpertSplit* split)
      : world_(world), index_(index), local_(std::move(local)), split_(split), ledger_(std::make_shared<Ledger>()) {}
  ~LeaderEngine() override { send(Op::stop); }

  const io::ModelConfig& config() const override { return local_->config(); }
  int64_t max_context() const override { return local_->max_context(); }
  int max_draft_tokens() const override { return local_->max_draft_tokens(); }
  void time_steps(model::StepTimes* times) override { local_->time_steps(times); }
  std::map<int, uint64_t> weight_bytes_per_node() const override { return local_->weight_bytes_per_node(); }
  std::unique_ptr<Sequence> new_sequence() const override {
    const int64_t id = ledger_->record_new(Op::new_sequence);
    return std::make_unique<LeaderSequence>(ledger_, id, local_->new_sequence());
  }

  Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
              std::span<const Feed> feeds, float* logits) override {
    if (seqs.size() != tokens.size()) return Status::invalid_argument("step: one token list per sequence");
    if (!feeds.empty() && feeds.size() != seqs.size()) return Status::invalid_argument("step: one feed kind per sequence");
    local_seqs_.clear();
    for (Sequence* s : seqs) {
      auto* l = dynamic_cast<LeaderSequence*>(s);
      if (l == nullptr) return Status::invalid_argument("step: sequence does not belong to this engine");
      local_seqs_.push_back(&l->local());
    }
    words_.assign(1, index_);
    ledger_->take(words_);
    words_.insert(words_.end(), {int64_t(Op::step), int64_t(seqs.size())});
    for (size_t i = 0; i < seqs.size(); ++i)
      words_.insert(words_.end(), {static_cast<LeaderSequence*>(seqs[i])->id(),
                                   int64_t(feeds.empty() ? Feed::append : feeds[i]), int64_t(tokens[i].size())});
    for (std::span<const int32_t> t : tokens) words_.insert(words_.end(), t.begin(), t.end());
    world_.broadcast(words_);
    return local_->step(local_seqs_, tokens, feeds, logits);
  }

  Status commit(Sequence& seq, int64_t keep) override {
    auto* l = dynamic_cast<LeaderSequence*>(&seq);
    if (l == nullptr) return Status::invalid_argument("commit: sequence does not belong to this engine");
    send(Op::commit, {l->id(), keep});
    return local_->commit(l->local(), keep);
  }

  Result<int> draft(Sequence& seq, int32_t anchor, const DraftOptions& options, DraftChooser& chooser,
                    int32_t* tokens, float* logits) override {
    auto* l = dynamic_cast<LeaderSequence*>(&seq);
    if (l == nullptr) return Status::invalid_argument("draft: sequence does not belong to this engine");
    send(Op::draft, {l->id(), anchor, options.max_tokens, int64_t(std::bit_cast<uint32_t>(options.confidence_threshold))});
    LeaderChooser c(world_, chooser);
    return local_->draft(l->local(), anchor, options, c, tokens, logits);
  }

  Status fill_synthetic(Sequence& seq, int64_t depth, uint64_t seed) override {
    auto* l = dynamic_cast<LeaderSequence*>(&seq);
    if (l == nullptr) return Status::invalid_argument("fill_synthetic: sequence does not belong to this engine");
    send(Op::fill_synthetic, {l->id(), depth, int64_t(seed)});
    return local_->fill_synthetic(l->local(), depth, seed);
  }

  // Every rank holds the same state for a sequence (attention and the drafter are replicated,
  // the routed experts hold none, and the exchanged rows are exact), so rank 0's bytes are every
  // rank's: the prefix store (--kv-cache-dir) works under mpirun as in one process.
  Status save_sequence(const Sequence& seq, std::vector<uint8_t>* out) const override {
    auto* l = dynamic_cast<const LeaderSequence*>(&seq);
    if (l == nullptr) return Status::invalid_argument("save_sequence: sequence does not belong to this engine");
    return local_->save_sequence(l->local(), out);
  }

  // Checked here first, so that bytes that do not load never reach the other ranks.
  Result<std::unique_ptr<Sequence>> load_sequence(std::span<const uint8_t> bytes) const override {
    DSV4_ASSIGN_OR_RETURN(std::unique_ptr<Sequence> local, local_->load_sequence(bytes));
    return std::unique_ptr<Sequence>(new LeaderSequence(ledger_, ledger_->record_load(bytes), std::move(local)));
  }

  std::vector<RankFigures> figures() {
    send(Op::figures);
    const std::vector<double> mine = figures_words(split_, *local_);
    const std::vector<double> all = world_.gather(mine);
    std::vector<RankFigures> out;
    for (int r = 0; r < world_.size(); ++r) out.push_back(figures_from_words(all.data() + size_t(r) * mine.size()));
    return out;
  }

 private:
  // The recorded sequence operations, then `op` and its operands, to every rank.
  void send(Op op, std::initializer_list<int64_t> operands = {}) {
    words_.assign(1, index_);
    ledger_->take(words_);
    words_.push_back(int64_t(op));
    words_.insert(words_.end(), operands);
    world_.broadcast(words_);
  }

  World& world_;
  const int64_t index_;
  std::unique_ptr<Engine> local_;
  const MpiExpertSplit* split_;   // null with one rank
  std::shared_ptr<Ledger> ledger_;
  std::vector<int64_t> words_;
  std::vector<Sequence*> local_seqs_;
};

// ---- the other ranks ----

// One engine of a follower rank, with the sequences rank 0 made on its twin.
struct FollowedEngine {
  std::unique_ptr<Engine> engine;
  const MpiExpertSplit* split;   // null with one rank
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs;
};

// Runs rank 0's calls on the engines until every one has stopped. Each call names its engine
// in its first word. Their outcomes are rank 0's too (the same checks on the same inputs),
// which reports them; here they are dropped.
void follow(const World& world, std::vector<FollowedEngine>& engines) {
  size_t running = engines.size();
  std::vector<int64_t> words;
  std::vector<Sequence*> step_seqs;
  std::vector<Feed> feeds;
  std::vector<int32_t> ids;
  std::vector<size_t> lens;
  std::vector<std::span<const int32_t>> spans;
  std::vector<float> logits;
  while (running > 0) {
    world.broadcast(words);
    DSV4_CHECK(!words.empty() && words[0] >= 0 && size_t(words[0]) < engines.size());
    FollowedEngine& followed = engines[size_t(words[0])];
    Engine& engine = *followed.engine;
    const MpiExpertSplit* split = followed.split;
    auto& seqs = followed.seqs;
    auto seq = [&](int64_t id) -> Sequence& {
      auto it = seqs.find(id);
      DSV4_CHECK(it != seqs.end());
      return *it->second;
    };
    const int64_t V = engine.config().vocab_size;
    for (size_t i = 1; i < words.size();) {
      const Op op = Op(words[i++]);
      switch (op) {
        case Op::new_sequence:
          seqs[words[i]] = engine.new_sequence();
          i += 1;
          break;
        case Op::clone:
          seqs[words[i + 1]] = seq(words[i]).clone();
          i += 2;
          break;
        case Op::reserve:
          seq(words[i]).reserve(words[i + 1]);
          i += 2;
          break;
        case Op::free:
          seqs.erase(words[i]);
          i += 1;
          break;
        case Op::step: {
          const size_t n = size_t(words[i++]);
          step_seqs.clear();
          feeds.clear();
          lens.clear();
          size_t total = 0, rows = 0;
          for (size_t k = 0; k < n; ++k, i += 3) {
            step_seqs.push_back(&seq(words[i]));
            feeds.push_back(Feed(words[i + 1]));
            lens.push_back(size_t(words[i + 2]));
            total += lens.back();
            rows += feeds.back() == Feed::verify ? lens.back() : 1;
          }
          ids.assign(words.begin() + int64_t(i), words.begin() + int64_t(i + total));   // int64 words -> ids
          i += total;
          spans.clear();
          for (size_t k = 0, at = 0; k < n; at += lens[k++]) spans.emplace_back(ids.data() + at, lens[k]);
          logits.resize(rows * size_t(V));
          (void)engine.step(step_seqs, spans, feeds, logits.data());
          break;
        }
        case Op::commit:
          (void)engine.commit(seq(words[i]), words[i + 1]);
          i += 2;
          break;
        case Op::draft: {
          DraftOptions o;
          o.max_tokens = int(words[i + 2]);
          o.confidence_threshold = std::bit_cast<float>(uint32_t(words[i + 3]));
          const int slots = std::max(1, engine.max_draft_tokens());
          ids.resize(size_t(slots));
          logits.resize(size_t(slots) * size_t(V));
          FollowerChooser c(world);
          (void)engine.draft(seq(words[i]), int32_t(words[i + 1]), o, c, ids.data(), logits.data());
          i += 4;
          break;
        }
        case Op::fill_synthetic:
          (void)engine.fill_synthetic(seq(words[i]), words[i + 1], uint64_t(words[i + 2]));
          i += 3;
          break;
        case Op::load_sequence: {
          const size_t n = size_t(words[i + 1]);
          auto loaded = engine.load_sequence(
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(words.data() + i + 2), n));
          // The bytes loaded on rank 0, into the same model: they load here too.
          DSV4_CHECK(loaded.ok());
          seqs[words[i]] = std::move(loaded).value();
          i += 2 + (n + 7) / 8;
          break;
        }
        case Op::figures:
          (void)world.gather(figures_words(split, *followed.engine));
          break;
        case Op::stop:
          running -= 1;
          break;
      }
    }
  }
}

}  // namespace

std::set<std::string> expert_tensors_outside(const io::ModelConfig& cfg, int64_t first, int64_t last) {
  const io::Inventory inv = io::model_inventory(cfg);
  std::vector<const io::BlockSpec*> blocks;
  for (const io::BlockSpec& b : inv.blocks) blocks.push_back(&b);
  if (inv.mtp) blocks.push_back(&inv.mtp->block);
  if (inv.dspark)
    for (const io::BlockSpec& b : inv.dspark->stages) blocks.push_back(&b);
  std::set<std::string> names;
  for (const io::BlockSpec* b : blocks)
    for (int64_t e = 0; e < int64_t(b->ffn.experts.size()); ++e) {
      if (e >= first && e < last) continue;
      for (const io::MatrixSpec* m : {&b->ffn.experts[size_t(e)].w1, &b->ffn.experts[size_t(e)].w2,
                                      &b->ffn.experts[size_t(e)].w3}) {
        names.insert(m->weight.name);
        if (m->scale) names.insert(m->scale->name);
      }
    }
  return names;
}

Result<io::TensorFilter> rank_tensors(const World& world, const std::string& dir) {
  if (world.size() == 1) return io::TensorFilter();
  DSV4_ASSIGN_OR_RETURN(const io::ModelConfig cfg, io::load_config(dir + "/config.json"));
  // The split names the experts of V4's inventory (io/inventory.h); V4.1's (io/inventory_v41.h)
  // is laid out differently and its forward does not call the exchange yet.
  if (cfg.architecture != io::Architecture::v4)
    return Status::unsupported(dir + ": expert parallelism under mpirun runs DeepSeek-V4 checkpoints only, not V4.1 yet");
  const auto [first, last] = expert_range(cfg.n_routed_experts, world.rank(), world.size());
  auto foreign = std::make_shared<const std::set<std::string>>(expert_tensors_outside(cfg, first, last));
  return io::TensorFilter([foreign](const std::string& name) { return !foreign->count(name); });
}

Result<std::unique_ptr<model::Model>> load_model_on_world(const World& world, const std::string& dir, bool populate,
                                                          bool numa) {
  Result<io::TensorFilter> wanted = rank_tensors(world, dir);
  Result<io::NodeCopy> copy = io::NodeCopy{};
  if (wanted.ok() && numa) copy = numa_node_copy(dir);
  Result<std::unique_ptr<model::Model>> m = !wanted.ok() ? wanted.status()
                                            : !copy.ok() ? copy.status()
                                                         : model::load_model(dir, *wanted, *copy);
  Status mine = m.status();
  if (mine.ok() && world.size() > 1) {
    model::Model& model = **m;
    auto split = std::make_unique<MpiExpertSplit>(world, model.cfg.n_routed_experts);
    // A rank's share is meant to fit its memory (that is the point of the split): populated
    // whatever the size of the whole checkpoint, without Engine::load's 2 MiB re-read (a shard's
    // pages are shared by the ranks of one host). Only the shards holding some of it are mapped.
    if (populate) mine = model.checkpoint->populate_tensors(*wanted).status();
    model.expert_split = std::move(split);
  }
  DSV4_TRY(world.agree(mine));
  return m;
}

Result<std::vector<std::unique_ptr<Engine>>> load_engines_on_world(World& world, const std::string& dir,
                                                                 const std::vector<EngineOptions>& options) {
  std::vector<FollowedEngine> loaded;
  for (const EngineOptions& o : options) {
    // One rank: Engine::load's own loading (and populating) with the lockstep wrapper, which
    // then has no one to send to, so that `mpirun -np 1` runs as a plain process does.
    FollowedEngine& f = loaded.emplace_back();
    f.split = nullptr;
    if (world.size() == 1) {
      DSV4_ASSIGN_OR_RETURN(f.engine, Engine::load(dir, o));
      continue;
    }
    Result<std::unique_ptr<model::Model>> m = load_model_on_world(world, dir, o.populate_weights, o.numa);
    if (!m.ok()) {
      if (world.rank() > 0) world.exit(1);
      return m.status();
    }
    f.split = static_cast<const MpiExpertSplit*>((*m)->expert_split.get());
    f.engine = Engine::open(std::move(*m), o);
  }
  if (world.rank() > 0) {
    follow(world, loaded);
    loaded.clear();
    world.exit(0);
  }
  std::vector<std::unique_ptr<Engine>> engines;
  for (size_t i = 0; i < loaded.size(); ++i)
    engines.emplace_back(new LeaderEngine(world, int64_t(i), std::move(loaded[i].engine), loaded[i].split));
  return engines;
}

Result<std::unique_ptr<Engine>> load_engine_on_world(World& world, const std::string& dir,
                                                     const EngineOptions& options) {
  DSV4_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<Engine>> engines, load_engines_on_world(world, dir, {options}));
  return std::move(engines.front());
}

Result<std::vector<RankFigures>> gather_rank_figures(Engine& engine) {
  auto* leader = dynamic_cast<LeaderEngine*>(&engine);
  if (leader == nullptr) return Status::invalid_argument("per-rank figures: not an engine of an MPI launch");
  return leader->figures();
}

}  // namespace dsv4::runtime

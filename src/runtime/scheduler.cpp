#include "runtime/scheduler.h"

#include <algorithm>
#include <limits>
#include <string>

namespace dsv4::runtime {

namespace {
// A steady_clock reading in nanoseconds, for the atomic start of the running step (stats()).
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
  }
  return "error";
}

// ---- Generation: the per-request channel ----

std::optional<GenerationEvent> Generation::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty() || drained_; })) return std::nullopt;
  if (events_.empty()) return std::nullopt;
  GenerationEvent e = std::move(events_.front());
  events_.pop_front();
  if (e.kind == GenerationEvent::Kind::finished) drained_ = true;
  return e;
}

void Generation::push(GenerationEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (event.kind == GenerationEvent::Kind::finished) closed_ = true;
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

// ---- Scheduler ----

struct Scheduler::Active {
  std::shared_ptr<Generation> gen;
  GenerationRequest req;
  std::unique_ptr<Sequence> seq;
  std::vector<int32_t> tokens;  // prompt + sampled tokens
  int64_t fed = 0;              // tokens consumed by seq
  int64_t prompt_len = 0;
  int64_t cached = 0;
  int64_t generated = 0;
  bool answer_started = false;  // answer_start_token was sampled or forced (output steering)
  bool done = false;            // the finished event was pushed; retire() comes next
  FinishReason reason = FinishReason::stop;
  Sampler sampler;
  // Speculative decoding: this step's verify chunk [anchor, drafts] (empty: none), the drafts'
  // distributions for a sampling request ([drafts, vocab]), and the request's counts.
  std::vector<int32_t> chunk;
  std::vector<float> q;
  int64_t rounds = 0, drafted = 0, accepted = 0;
  int64_t decode_steps = 0;
  // Prompt offsets past `fed` where the state is snapshotted, ascending; the next is at
  // snapshot_points[next_point].
  std::vector<int64_t> snapshot_points;
  size_t next_point = 0;
  int64_t take = 0;               // plan_prefill: tokens this step feeds
  AcceptanceRate acceptance;
  int64_t next_probe = 0;         // decode step of the next probe round while drafting does not pay
  int64_t probe_gap = 16;
  Active(std::shared_ptr<Generation> g, GenerationRequest r)
      : gen(std::move(g)), req(std::move(r)), sampler(req.sampling, req.prompt) {
    tokens = req.prompt;
    prompt_len = int64_t(tokens.size());
  }
  // Tokens not fed yet: the prompt's rest, the last sampled token, forced tokens.
  int64_t pending() const { return int64_t(tokens.size()) - fed; }
  // Tokens a prefill chunk may feed now: up to the next snapshot point.
  int64_t wanted() const {
    return next_point < snapshot_points.size() ? snapshot_points[next_point] - fed : pending();
  }
};

Scheduler::Scheduler(Engine& engine, SchedulerOptions options, std::unique_ptr<PrefixStore> disk)
    : engine_(engine),
      options_(options),
      max_context_(engine.max_context()),
      vocab_size_(engine.config().vocab_size),
      eos_id_(int32_t(engine.config().eos_token_id)),
      cache_(options.cache_bytes),
      disk_(std::move(disk)),
      max_drafts_(options.draft_tokens < 0 ? engine.max_draft_tokens()
                                            : std::min(options.draft_tokens, engine.max_draft_tokens())),
      planner_(max_drafts_) {
  DSV4_CHECK(options_.max_running >= 1 && options_.max_queued >= 0);
  DSV4_CHECK(options_.step_token_budget >= options_.max_running);
  thread_ = std::thread([this] { run_loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Requests still open end with an error that says why (a client must not take a cut-off answer
  // for a complete one), and with the counts of what they did generate.
  const Status down = Status::resource_exhausted("the server is shutting down");
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [gen, req] : queue_) {
    GenerationEvent e;
    e.kind = GenerationEvent::Kind::finished;
    e.finish = FinishReason::error;
    e.status = down;
    e.prompt_tokens = int64_t(req.prompt.size());
    gen->push(std::move(e));
  }
  queue_.clear();
  for (auto& a : running_)
    if (!a->done) finish(*a, FinishReason::error, down);
  running_.clear();
  running_count_.store(0);
}

Result<std::shared_ptr<Generation>> Scheduler::submit(GenerationRequest request) {
  if (request.prompt.empty()) return Status::invalid_argument("the prompt is empty");
  for (int32_t t : request.prompt)
    if (t < 0 || t >= vocab_size_)
      return Status::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                      std::to_string(vocab_size_) + ")");
  for (int32_t t : request.stop_token_ids)
    if (t < 0 || t >= vocab_size_)
      return Status::invalid_argument("stop token id " + std::to_string(t) + " is outside the vocabulary");
  for (const auto* ids : {&request.answer_prefix, &request.banned_tokens})
    for (int32_t t : *ids)
      if (t < 0 || t >= vocab_size_)
        return Status::invalid_argument("steering token id " + std::to_string(t) + " is outside the vocabulary");
  for (const auto& [t, bias] : request.sampling.logit_bias)
    if (t >= vocab_size_)
      return Status::invalid_argument("'logit_bias' token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                      std::to_string(vocab_size_) + ")");
  if (request.answer_start_token >= vocab_size_ || (request.thinking_budget > 0 && request.answer_start_token < 0))
    return Status::invalid_argument("a thinking budget needs an answer start token inside the vocabulary");
  if (request.max_tokens < 0) return Status::invalid_argument("'max_tokens' must be >= 0");
  if (request.constraint && request.ignore_eos)
    return Status::invalid_argument("'ignore_eos' cannot be combined with a structured output, which ends at EOS");
  DSV4_TRY(validate_sampling(request.sampling));
  if (int64_t(request.prompt.size()) >= max_context_)
    return Status::out_of_range("the prompt has " + std::to_string(request.prompt.size()) +
                                " tokens, but this model's maximum context length is " + std::to_string(max_context_) +
                                " tokens (the prompt plus at least one generated token must fit)");
  std::shared_ptr<Generation> gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::resource_exhausted("the server is shutting down");
    // Requests the inference thread has not admitted yet count against the queue, so at most
    // max_running + max_queued requests are ever in flight.
    if (int64_t(queue_.size()) >= options_.max_queued + options_.max_running - running_count_.load())
      return Status::resource_exhausted("too many requests: " + std::to_string(queue_.size()) +
                                        " are already waiting");
    gen = std::make_shared<Generation>(next_id_++);
    queue_.emplace_back(gen, std::move(request));
  }
  cv_.notify_all();
  return gen;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queued = int64_t(queue_.size());
  }
  s.running = running_count_.load();
  s.steps = steps_.load();
  s.prefix_hits = prefix_hits_.load();
  s.prefix_tokens_reused = prefix_tokens_reused_.load();
  s.prefix_snapshots = prefix_snapshots_.load();
  s.prefix_cache_bytes = prefix_cache_bytes_.load();
  s.prefix_disk_hits = disk_hits_.load();
  s.max_batch = max_batch_.load();
  s.spec_rounds = spec_rounds_.load();
  s.drafted_tokens = drafted_.load();
  s.accepted_tokens = accepted_.load();
  if (const int64_t started = step_started_ns_.load(); started != 0)
    s.step_running_s = double(steady_ns() - started) * 1e-9;
  return s;
}

void Scheduler::run_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
    if (stopping_) return;
    take_queued();
    lock.unlock();
    step_started_ns_.store(steady_ns());
    admit();
    run_step();
    step_started_ns_.store(0);
    lock.lock();
  }
}

// REQUIRES: mu_ held. They count as running from here (submit's queue cap).
void Scheduler::take_queued() {
  while (int(running_.size() + admitted_.size()) < options_.max_running && !queue_.empty()) {
    admitted_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  running_count_.store(int64_t(running_.size() + admitted_.size()));
}

// Without mu_: resuming may read a state file.
void Scheduler::admit() {
  for (auto& [gen, req] : admitted_) {
    if (gen->cancel_requested()) {
      GenerationEvent e;
      e.kind = GenerationEvent::Kind::finished;
      e.finish = FinishReason::cancelled;
      e.prompt_tokens = int64_t(req.prompt.size());
      gen->push(std::move(e));
      continue;
    }
    auto a = std::make_unique<Active>(std::move(gen), std::move(req));
    resume(*a);
    // Room for every position the request may reach, so that its decode steps never grow the
    // state (reserved address space is only backed by memory once written). At most
    // kMaxReservedOutput output tokens ahead: a 1M-token context would otherwise reserve ~7 GB
    // of address space per V4-Flash sequence, which strict overcommit (vm.overcommit_memory=2)
    // refuses; past that the state grows by ~1/8 when full.
    constexpr int64_t kMaxReservedOutput = 65536;
    const int64_t prompt = a->prompt_len + int64_t(a->req.answer_prefix.size());
    const int64_t output = a->req.max_tokens > 0 ? a->req.max_tokens : max_context_;
    a->seq->reserve(std::min(prompt + std::min(output, kMaxReservedOutput), max_context_));
    // A prefix with no start token opens the output: it is fed with the prompt.
    if (a->req.answer_start_token < 0 && !a->req.answer_prefix.empty()) {
      a->answer_started = true;
      const std::vector<int32_t> prefix = a->req.answer_prefix;
      if (force_tokens(*a, prefix)) {  // max_tokens or the context ended it already
        retire(*a);
        continue;
      }
    }
    running_.push_back(std::move(a));
  }
  admitted_.clear();
  running_count_.store(int64_t(running_.size()));
}

// At least one prompt token must remain to be fed: its logits give the first sample.
// A state file deeper than the memory's snapshot is read, and kept in memory from then on.
void Scheduler::resume(Active& a) {
  PrefixCache::Hit hit = cache_.find(a.tokens, a.prompt_len - 1);
  if (disk_) {
    PrefixStore::Hit file = disk_->find(a.tokens, hit.depth, a.prompt_len - 1);
    if (file.seq) {
      hit = {std::shared_ptr<const Sequence>(std::move(file.seq)), file.depth};
      cache_.insert(std::span<const int32_t>(a.tokens.data(), size_t(hit.depth)), hit.seq);
      disk_hits_.fetch_add(1);
    }
  }
  if (hit.seq) {
    a.seq = hit.seq->clone();
    a.fed = a.cached = hit.depth;
    prefix_hits_.fetch_add(1);
    prefix_tokens_reused_.fetch_add(uint64_t(hit.depth));
  } else {
    a.seq = engine_.new_sequence();
  }
  if (!caching()) return;
  std::vector<int64_t>& points = a.snapshot_points;
  for (int64_t p : a.req.message_starts)
    if (p > a.fed && p < a.prompt_len) points.push_back(p);
  if (options_.snapshot_interval > 0)
    for (int64_t p = (a.fed / options_.snapshot_interval + 1) * options_.snapshot_interval; p < a.prompt_len;
         p += options_.snapshot_interval)
      points.push_back(p);
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
}

// A copy holds no spare capacity (the live sequence carries the room admit() reserved), so the
// cache's byte count is what the state really uses.
void Scheduler::snapshot(Active& a) {
  const std::span<const int32_t> consumed(a.tokens.data(), size_t(a.fed));
  if (!caching() || a.fed == 0 || cache_.contains(consumed)) return;
  std::shared_ptr<const Sequence> copy = a.seq->clone();
  cache_.insert(consumed, copy);
  if (disk_) disk_->put(consumed, std::move(copy));
  prefix_snapshots_.store(cache_.snapshots());
  prefix_cache_bytes_.store(cache_.bytes());
}

void Scheduler::finish(Active& a, FinishReason reason, Status status) {
  GenerationEvent e;
  e.kind = GenerationEvent::Kind::finished;
  e.finish = reason;
  e.status = std::move(status);
  e.prompt_tokens = a.prompt_len;
  e.cached_tokens = a.cached;
  e.generated_tokens = a.generated;
  e.spec_rounds = a.rounds;
  e.drafted_tokens = a.drafted;
  e.accepted_tokens = a.accepted;
  if (reason == FinishReason::stop && a.generated > 0) {
    const int32_t last = a.tokens.back();
    if (last == eos_id_ || std::find(a.req.stop_token_ids.begin(), a.req.stop_token_ids.end(), last) !=
                               a.req.stop_token_ids.end())
      e.stop_token = last;
  }
  a.gen->push(std::move(e));
  a.done = true;
  a.reason = reason;
}

// The sequence has consumed tokens[0, fed) (a verify chunk is committed before this); keep it
// for a request that continues it, then free it.
void Scheduler::retire(Active& a) {
  if (a.reason != FinishReason::error && a.seq && a.seq->position() == a.fed) snapshot(a);
  a.seq.reset();
}

namespace {

// Draft tokens picked by the request's own sampler, which records q for a sampled request.
// Under a constraint, the drafter's logits are masked by a copy of it advanced along the drafts
// (drafts it refuses would only be rejected by verify); once it allows nothing (past the end of
// the value) the drafts go unmasked, and verify rejects them.
class SamplerChooser final : public DraftChooser {
 public:
  SamplerChooser(Sampler& s, float* q, int64_t vocab, std::unique_ptr<TokenConstraint> rule, std::vector<float>& row)
      : sampler_(s), q_(q), vocab_(vocab), rule_(std::move(rule)), row_(row) {}
  int32_t choose(int i, std::span<const float> z) override {
    const std::span<float> q = q_ ? std::span<float>(q_ + i * vocab_, size_t(vocab_)) : std::span<float>();
    if (!rule_) return sampler_.draft(z, q);
    row_.assign(z.begin(), z.end());
    if (!rule_->mask(row_)) {
      rule_.reset();
      return sampler_.draft(z, q);
    }
    const int32_t t = sampler_.draft(row_, q);
    rule_->advance(t);
    return t;
  }

 private:
  Sampler& sampler_;
  float* q_;
  int64_t vocab_;
  std::unique_ptr<TokenConstraint> rule_;
  std::vector<float>& row_;
};

}  // namespace

// The first decode steps measure: until a plain step has been timed, one step in 4 drafts
// nothing; until a round has been timed, every step drafts max_drafts_. Then each round drafts
// the count that emits the most tokens per second at the request's acceptance (DraftPlanner),
// if that beats plain decoding. A request whose drafts do not pay still drafts now and then, so
// that its acceptance estimate can recover: after 16 steps, then after twice as many each time
// a probe fails (up to 256), and after 16 again once drafting pays.
int Scheduler::drafts_for(Active& a) {
  a.decode_steps += 1;
  if (!options_.adaptive_drafting) return max_drafts_;
  if (!planner_.measured(0)) return a.decode_steps % 4 != 0 ? max_drafts_ : 0;
  if (!planner_.ready()) return max_drafts_;
  const double rate = a.acceptance.rate();
  const int k = planner_.best(rate);
  if (planner_.pays(k, rate)) {
    a.probe_gap = 16;
    a.next_probe = 0;
    return k;
  }
  if (a.next_probe == 0) a.next_probe = a.decode_steps + a.probe_gap;
  if (a.decode_steps < a.next_probe) return 0;
  a.probe_gap = std::min<int64_t>(2 * a.probe_gap, 256);
  a.next_probe = a.decode_steps + a.probe_gap;
  return k;
}

void Scheduler::draft(Active& a, int max_drafts) {
  a.chunk.clear();
  // A round emits up to drafts + 1 tokens and feeds as many positions: no draft beyond
  // max_tokens or the context.
  int64_t k = std::min<int64_t>(max_drafts, max_context_ - int64_t(a.tokens.size()));
  if (a.req.max_tokens > 0) k = std::min(k, a.req.max_tokens - a.generated - 1);
  if (k < 1 || a.seq->position() == 0) return;
  const bool sampled = !a.sampler.params().greedy();
  if (sampled) a.q.resize(size_t(k * vocab_size_));
  draft_logits_.resize(size_t(k * vocab_size_));
  a.chunk.resize(size_t(1 + k));
  a.chunk[0] = a.tokens.back();
  SamplerChooser chooser(a.sampler, sampled ? a.q.data() : nullptr, vocab_size_,
                         constrained(a) ? a.req.constraint->clone() : nullptr, draft_row_);
  DraftOptions o;
  o.max_tokens = int(k);
  o.confidence_threshold = options_.draft_confidence;
  Result<int> n = engine_.draft(*a.seq, a.chunk[0], o, chooser, a.chunk.data() + 1, draft_logits_.data());
  if (!n.ok()) {
    a.chunk.clear();
    finish(a, FinishReason::error, n.status());
    return;
  }
  a.chunk.resize(*n == 0 ? 0 : size_t(1 + *n));
}

// Samples at each position of the verify chunk in order (logits: one row per chunk token), as
// long as the token is the draft that the chunk fed next and nothing else joined the output
// (a stop, forced tokens); then keeps the chunk's positions consumed with the right history.
void Scheduler::verify(Active& a, float* logits) {
  const int64_t k = int64_t(a.chunk.size()) - 1, V = vocab_size_, fed = a.fed;
  const bool sampled = !a.sampler.params().greedy();
  a.rounds += 1;
  a.drafted += k;
  drafted_.fetch_add(uint64_t(k));
  spec_rounds_.fetch_add(1);
  int64_t j = 0;
  int accepted_now = 0;
  bool rejected = false;
  for (;; ++j) {
    std::span<float> row(logits + j * V, size_t(V));
    if (Status bad = check_logits_finite(row); !bad.ok()) {
      finish(a, FinishReason::error, std::move(bad));
      break;
    }
    if (!mask_row(a, row)) break;
    if (j == k) {
      after_sample(a, a.sampler.sample(row));
      break;
    }
    bool accepted = false;
    const std::span<const float> q = sampled ? std::span<const float>(a.q.data() + j * V, size_t(V))
                                             : std::span<const float>();
    const SampledToken s = a.sampler.verify(row, a.chunk[size_t(j + 1)], q, &accepted);
    if (accepted) {
      a.accepted += 1;
      accepted_now += 1;
      accepted_.fetch_add(1);
    }
    rejected = !accepted;
    if (after_sample(a, s) || !accepted || int64_t(a.tokens.size()) != fed + j + 2) break;
  }
  a.acceptance.record(accepted_now, rejected);
  const Status st = engine_.commit(*a.seq, j + 1);
  DSV4_CHECK(st.ok());
  a.fed += j + 1;
  a.chunk.clear();
}

bool Scheduler::constrained(const Active& a) const {
  return a.req.constraint && (a.req.answer_start_token < 0 || a.answer_started);
}

bool Scheduler::mask_row(Active& a, std::span<float> row) {
  for (int32_t t : a.req.banned_tokens) row[size_t(t)] = -std::numeric_limits<float>::infinity();
  if (!constrained(a) || a.req.constraint->mask(row)) return true;
  finish(a, FinishReason::error,
         Status::internal("the structured output has no valid continuation (its schema nests deeper than the "
                          "matcher's limit)"));
  return false;
}

bool Scheduler::after_sample(Active& a, const SampledToken& s) {
  if (constrained(a)) a.req.constraint->advance(s.token);
  const bool is_stop = (!a.req.ignore_eos && s.token == eos_id_) ||
                       std::find(a.req.stop_token_ids.begin(), a.req.stop_token_ids.end(), s.token) !=
                           a.req.stop_token_ids.end();
  if (is_stop) {
    a.generated += 1;
    a.tokens.push_back(s.token);
    finish(a, FinishReason::stop);
    return true;
  }
  if (emit_token(a, s)) return true;
  if (a.answer_started || a.req.answer_start_token < 0) return false;
  if (s.token == a.req.answer_start_token) {
    a.answer_started = true;
    return force_tokens(a, a.req.answer_prefix);
  }
  if (a.req.thinking_budget > 0 && a.generated >= a.req.thinking_budget) {
    a.answer_started = true;
    std::vector<int32_t> forced = {a.req.answer_start_token};
    forced.insert(forced.end(), a.req.answer_prefix.begin(), a.req.answer_prefix.end());
    return force_tokens(a, forced);
  }
  return false;
}

bool Scheduler::force_tokens(Active& a, std::span<const int32_t> forced) {
  for (int32_t t : forced) {
    SampledToken s;
    s.token = t;
    a.sampler.accept(t);
    if (emit_token(a, s)) return true;
  }
  return false;
}

// Appends a token that is not a stop token to the output and emits it; finishes the request
// at max_tokens or a full context.
bool Scheduler::emit_token(Active& a, const SampledToken& s) {
  a.generated += 1;
  a.tokens.push_back(s.token);
  GenerationEvent e;
  e.kind = GenerationEvent::Kind::token;
  e.sampled = s;
  a.gen->push(std::move(e));
  if (a.req.max_tokens > 0 && a.generated >= a.req.max_tokens) {
    finish(a, FinishReason::length);
    return true;
  }
  // The sampled token still has to be fed; it needs a free context slot.
  if (int64_t(a.tokens.size()) >= max_context_) {
    finish(a, FinishReason::length);
    return true;
  }
  return false;
}

void Scheduler::run_step() {
  // Cancelled requests leave first; their state is freed here.
  for (auto& a : running_)
    if (a->gen->cancel_requested()) finish(*a, FinishReason::cancelled);
  retire_done();
  if (running_.empty()) return;

  // Decoding sequences feed one token each, or their verify chunk; prefills (and forced output
  // tokens) share what is left of the budget.
  std::vector<Active*>& batch = batch_;
  std::vector<std::span<const int32_t>>& feeds = feeds_;
  batch.clear();
  feeds.clear();
  feed_kinds_.clear();
  const auto start = std::chrono::steady_clock::now();
  int64_t budget = options_.step_token_budget;
  int widest = 0;   // the most drafts of a verify chunk in this step
  for (auto& a : running_) {
    if (a->pending() != 1) continue;
    if (max_drafts_ > 0)
      if (const int k = drafts_for(*a); k > 0) draft(*a, k);
    if (a->done) continue;
    batch.push_back(a.get());
    const bool verifying = !a->chunk.empty();
    if (verifying) widest = std::max(widest, int(a->chunk.size()) - 1);
    feeds.push_back(verifying ? std::span<const int32_t>(a->chunk) : std::span<const int32_t>(a->tokens.data() + a->fed, 1));
    feed_kinds_.push_back(verifying ? Feed::verify : Feed::append);
    budget -= int64_t(feeds.back().size());
  }
  const size_t decoding = batch.size();
  prefills_.clear();
  for (auto& a : running_)
    if (a->pending() > 1) prefills_.push_back(a.get());
  plan_prefill(prefills_, budget);
  for (Active* a : prefills_) {
    if (a->take == 0) continue;
    batch.push_back(a);
    feeds.push_back(std::span<const int32_t>(a->tokens.data() + a->fed, size_t(a->take)));
    feed_kinds_.push_back(Feed::append);
  }
  if (batch.empty()) {   // drafting may have ended a request
    retire_done();
    return;
  }
  const size_t vocab = size_t(vocab_size_);
  // Logits rows of feed i: every token of a verify chunk, the last one of an append feed.
  auto rows_of = [&](size_t i) { return feed_kinds_[i] == Feed::verify ? feeds[i].size() : size_t(1); };
  size_t rows = 0;
  for (size_t i = 0; i < batch.size(); ++i) rows += rows_of(i);
  logits_.resize(rows * vocab);
  batch_seqs_.clear();
  for (Active* a : batch) batch_seqs_.push_back(a->seq.get());
  Status st = engine_.step(batch_seqs_, feeds, feed_kinds_, logits_.data());
  std::vector<Status>& per = batch_status_;
  per.assign(batch.size(), Status::ok_status());
  if (!st.ok()) {
    // The engine leaves every sequence unchanged on failure: retry one by one so that only the
    // request at fault fails.
    size_t row = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      Sequence* one = batch_seqs_[i];
      per[i] = engine_.step(std::span<Sequence* const>(&one, 1), std::span(feeds).subspan(i, 1),
                            std::span<const Feed>(feed_kinds_).subspan(i, 1), logits_.data() + row * vocab);
      row += rows_of(i);
    }
  }
  steps_.fetch_add(1);
  if (batch.size() > max_batch_.load()) max_batch_.store(batch.size());
  // The cost of a decode-only step (drafts included), for drafts_for.
  if (max_drafts_ > 0 && decoding == batch.size() && st.ok())
    planner_.record(widest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  size_t row = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    Active& a = *batch[i];
    float* logits = logits_.data() + row * vocab;
    row += rows_of(i);
    if (!per[i].ok()) {
      a.chunk.clear();
      finish(a, FinishReason::error, per[i]);
      continue;
    }
    if (feed_kinds_[i] == Feed::verify) {
      if (a.gen->cancel_requested()) {   // keep the anchor only; dropped at the next step
        DSV4_CHECK(engine_.commit(*a.seq, 1).ok());
        a.fed += 1;
        a.chunk.clear();
      } else {
        verify(a, logits);
      }
      continue;
    }
    a.fed += int64_t(feeds[i].size());
    if (a.next_point < a.snapshot_points.size() && a.fed == a.snapshot_points[a.next_point]) {
      snapshot(a);
      a.next_point += 1;
    }
    if (a.pending() > 0) {
      if (a.req.report_prefill_progress && a.fed < a.prompt_len) {
        GenerationEvent e;
        e.kind = GenerationEvent::Kind::prefill_progress;
        e.prefill_done = a.fed;
        e.prompt_tokens = a.prompt_len;
        a.gen->push(std::move(e));
      }
      continue;
    }
    if (a.gen->cancel_requested()) continue;  // dropped at the start of the next step
    if (Status bad = check_logits_finite(std::span<const float>(logits, vocab)); !bad.ok()) {
      finish(a, FinishReason::error, std::move(bad));
      continue;
    }
    if (!mask_row(a, std::span<float>(logits, vocab))) continue;
    after_sample(a, a.sampler.sample(std::span<float>(logits, vocab)));
  }
  retire_done();
}

// Water-filling: the prefills in order of what they want (Active::wanted), each taking at most
// an equal share of what is left, so that whatever one does not need goes to the others.
void Scheduler::plan_prefill(std::span<Active* const> prefills, int64_t budget) {
  order_.assign(prefills.begin(), prefills.end());
  std::stable_sort(order_.begin(), order_.end(), [](const Active* x, const Active* y) { return x->wanted() < y->wanted(); });
  int64_t left = std::max<int64_t>(budget, 0);
  for (size_t i = 0; i < order_.size(); ++i) {
    const int64_t share = std::max<int64_t>(1, left / int64_t(order_.size() - i));
    order_[i]->take = std::min({order_[i]->wanted(), share, left});
    left -= order_[i]->take;
  }
}

void Scheduler::retire_done() {
  for (auto& a : running_) {
    if (!a->done) continue;
    retire(*a);
    a.reset();
  }
  std::erase(running_, nullptr);
  running_count_.store(int64_t(running_.size()));
}

}  // namespace dsv4::runtime

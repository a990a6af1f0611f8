// Continuous batching over one Engine: the scheduler owns the only inference thread. Requests
// come in through a bounded queue (submit), and each one's events go out through its own
// Generation channel, read by the caller's thread (an HTTP handler, the CLI).
//
// One iteration of the inference thread:
//   1. admit queued requests while fewer than max_running are running; a request starts from a
//      clone of the deepest snapshot of the prefix cache (runtime/prefix_cache.h) whose tokens
//      are a prefix of its prompt, instead of re-prefilling those tokens;
//   2. drop cancelled requests (their state is freed at once);
//   3. build one batch (the scheduling policy): every decoding sequence feeds its last sampled
//      token (or its verify chunk) first; what is left of step_token_budget goes to sequences
//      with several tokens to feed (prompts, forced output tokens) in equal shares, a sequence
//      that needs less than its share leaving the rest to the others (water-filling). So a
//      long prompt never stalls the decoding streams for more than one chunk, and a short
//      prompt admitted behind it is not queued behind it: with n prompts in prefill each gets
//      at least budget/n tokens per step, and a prompt shorter than that is consumed in one;
//   4. one Engine::step over the whole batch; sample for every sequence whose prompt is
//      consumed; emit tokens; finish on EOS / stop token id / max_tokens / full context.
// Snapshots: a prompt's chunks are cut so that they end exactly at its snapshot points (the
// offsets where a message opens, GenerationRequest::message_starts, and every
// snapshot_interval tokens), where a clone of the state enters the prefix cache; a finished
// sequence enters it too, with the tokens it consumed. An agent's next prompt, which rewrites
// the end of the conversation (earlier reasoning dropped, reminders inserted), then resumes
// from the last message start before the divergence.
// Speculative decoding (addendum §A5), when the engine has a drafter: before step 3, a decoding
// sequence drafts up to draft_tokens tokens after its last sampled token (the anchor) and
// feeds [anchor, drafts] as one verify chunk. Step 4 then samples at each chunk position in
// order through Sampler::verify, keeps going while the token equals the draft, and commits the
// positions consumed with the right history (Engine::commit). Every emitted token is the one
// plain decoding would sample from the same logits (greedy: identical output; sampled: the same
// distribution), and the checks of step 4 run after each one, so nothing is emitted past a stop.
// A sequence is computed the same way alone or in a batch (the Engine's contract), and every
// request samples with its own generator, so greedy and seeded outputs do not depend on batching.
//
// Thread-safety: submit/stats may be called from any thread. A Generation is shared between
// the inference thread (producer) and one consumer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "core/status.h"
#include "runtime/draft_planner.h"
#include "runtime/engine.h"
#include "runtime/prefix_cache.h"
#include "runtime/prefix_store.h"
#include "runtime/sampler.h"
#include "runtime/token_constraint.h"

namespace dsv4::runtime {

enum class FinishReason { stop, length, cancelled, error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerationRequest {
  std::vector<int32_t> prompt;          // full prompt ids (BOS included by the caller)
  SamplingParams sampling;
  int64_t max_tokens = 0;               // 0 = until the context is full
  std::vector<int32_t> stop_token_ids;  // end generation; not emitted (EOS always, unless ignore_eos)
  bool ignore_eos = false;
  bool report_prefill_progress = false; // emit prefill_progress events after each chunk

  // Output steering, in token ids the caller derives from the prompt format (tool_choice,
  // thinking budgets). Forced tokens are written into the output as if sampled: they are
  // emitted as token events (logprob 0), fed to the model, count as generated tokens and enter
  // the penalty history; sampling then continues after them.
  //   answer_prefix follows answer_start_token (`</think>` in thinking mode) as soon as that is
  //   sampled, or opens the output when answer_start_token < 0.
  //   After thinking_budget generated tokens (0 = no budget) without answer_start_token, that
  //   token is forced, followed by answer_prefix. Needs answer_start_token >= 0.
  int32_t answer_start_token = -1;
  std::vector<int32_t> answer_prefix;
  int64_t thinking_budget = 0;
  std::vector<int32_t> banned_tokens;   // never sampled (their logits become -inf)
  // Structured output (runtime/token_constraint.h): restricts every sampled token of the answer
  // (after answer_start_token and answer_prefix, or from the first token when
  // answer_start_token < 0; forced tokens are not its business). The scheduler advances it, so
  // each request needs its own. Incompatible with ignore_eos: the constrained text ends at EOS.
  std::shared_ptr<TokenConstraint> constraint;

  // Prompt offsets where a message opens (chat prompts; the text layer finds them): the state
  // there is snapshotted into the prefix cache. Any order; offsets outside (0, prompt size) are
  // ignored.
  std::vector<int64_t> message_starts;
};

struct GenerationEvent {
  enum class Kind { prefill_progress, token, finished };
  Kind kind = Kind::token;
  SampledToken sampled;                 // token
  int64_t prefill_done = 0;             // prefill_progress: prompt tokens consumed (cached included)
  FinishReason finish = FinishReason::stop;  // finished
  Status status;                        // finished with FinishReason::error
  int64_t prompt_tokens = 0;            // finished: usage
  int64_t cached_tokens = 0;            //   prompt tokens taken from the prefix cache
  int64_t generated_tokens = 0;         //   sampled tokens, a final stop token included
  int64_t spec_rounds = 0;              //   speculative decoding: verify rounds,
  int64_t drafted_tokens = 0;           //   the drafts they verified
  int64_t accepted_tokens = 0;          //   and the drafts among the generated tokens
  std::optional<int32_t> stop_token;    //   the stop token that ended generation, if any
};

// The per-request channel: events in order, ending with exactly one `finished` event.
class Generation {
 public:
  explicit Generation(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }

  // Waits up to `timeout` for the next event; nullopt on timeout or after the finished event
  // has been taken.
  std::optional<GenerationEvent> next(std::chrono::milliseconds timeout);
  // Asks the scheduler to stop this request and free its state; a `finished` event with
  // FinishReason::cancelled follows unless it had already finished.
  void cancel() { cancelled_.store(true); }
  bool cancel_requested() const { return cancelled_.load(); }

  // Producer side (the scheduler).
  void push(GenerationEvent event);

 private:
  const uint64_t id_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> events_;
  bool closed_ = false;  // the finished event was pushed
  bool drained_ = false; // the finished event was taken
};

struct SchedulerOptions {
  int max_running = 16;              // sequences decoding or prefilling at once
  int max_queued = 64;               // waiting requests; submit fails beyond (HTTP 429)
  int64_t step_token_budget = 256;   // tokens fed per forward step, decode + prefill chunks
  // Prefix cache: bytes of snapshots kept (Sequence::memory_bytes, LRU; 0 = no cache), and
  // the interval of the snapshots taken inside a prompt besides its message starts. A snapshot
  // holds the fixed-size state (rings, compressor states: ~17 MB on V4-Flash) plus the
  // compressed entries so far (~7 KB per token on V4-Flash), so at 2048 tokens the fixed part
  // is about what the interval adds; a shorter one would mostly store rings again.
  size_t cache_bytes = size_t(4) << 30;
  int64_t snapshot_interval = 2048;
  // Speculative decoding, where the engine has a drafter (Engine::max_draft_tokens() > 0):
  // drafts per round at most (-1 = the drafter's maximum, 0 = off), and DSpark's confidence
  // threshold (addendum §A5.2 step 1; 0 = verify every draft).
  int draft_tokens = -1;
  float draft_confidence = 0.0f;
  // false: draft_tokens drafts at every decode step. true: each round drafts the count that emits
  // the most tokens per second, and none while drafting does not pay (Scheduler::drafts_for,
  // runtime/draft_planner.h): a drafter that is rarely right, or a verify step that costs much
  // more than a plain one (small models, few cores), would otherwise make decoding slower.
  // Output is the same either way.
  bool adaptive_drafting = true;
};

struct SchedulerStats {
  int64_t queued = 0;
  int64_t running = 0;
  uint64_t steps = 0;
  uint64_t prefix_hits = 0;
  uint64_t prefix_tokens_reused = 0;
  uint64_t prefix_snapshots = 0;     // snapshots the prefix cache holds now,
  uint64_t prefix_cache_bytes = 0;   // and their bytes
  uint64_t prefix_disk_hits = 0;     // prefix hits read from a state file (--kv-cache-dir)
  uint64_t max_batch = 0;            // the most sequences ever fed in one step
  uint64_t spec_rounds = 0;          // verify chunks fed
  uint64_t drafted_tokens = 0;       // drafts in them
  uint64_t accepted_tokens = 0;      // drafts emitted as output
  // How long the step in progress has been running, in seconds (0: none is). A step that does not
  // end (a stuck engine; under mpirun, a rank waiting for another) grows here: serve's /health
  // answers 503 past a threshold.
  double step_running_s = 0;
};

class Scheduler {
 public:
  // Starts the inference thread. `engine` must outlive the scheduler. With `disk` (opened on
  // the same engine), every snapshot is also written to it, and a request resumes from a state
  // file when one is deeper than the memory's snapshots.
  Scheduler(Engine& engine, SchedulerOptions options, std::unique_ptr<PrefixStore> disk = nullptr);
  ~Scheduler();  // shutdown()

  // Stops the inference thread: every queued and running request gets a `finished` event with
  // FinishReason::error and a resource_exhausted status ("the server is shutting down"), with
  // the counts of what it generated, and later submits fail. Idempotent.
  void shutdown();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates and queues a request. Errors: invalid_argument (empty prompt, token id outside
  // the vocabulary, bad sampling parameters, a constraint with ignore_eos), out_of_range (the prompt does not fit the
  // context), resource_exhausted (the queue is full).
  Result<std::shared_ptr<Generation>> submit(GenerationRequest request);

  SchedulerStats stats() const;
  int64_t max_context() const { return max_context_; }
  int64_t vocab_size() const { return vocab_size_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Active;

  void run_loop();
  void take_queued();
  void admit();
  void run_step();
  void finish(Active& a, FinishReason reason, Status status = {});
  void retire(Active& a);                                // after finish: cache the state, free it
  void retire_done();                                    // retire() every finished running request
  int drafts_for(Active& a);   // this round's draft count (0: none)
  bool constrained(const Active& a) const;               // the constraint applies to the next token
  bool mask_row(Active& a, std::span<float> row);       // bans + constraint; false: the request failed
  void draft(Active& a, int max_drafts);                 // fills a.chunk when the drafter proposes
  void verify(Active& a, float* logits);                 // consumes a's verify chunk
  bool after_sample(Active& a, const SampledToken& s);  // true when the request finished
  bool emit_token(Active& a, const SampledToken& s);    // true when the request finished
  bool force_tokens(Active& a, std::span<const int32_t> forced);  // true when it finished
  bool caching() const { return options_.cache_bytes > 0 || disk_ != nullptr; }
  void resume(Active& a);     // a's sequence: from the deepest cached snapshot, or fresh
  void snapshot(Active& a);   // caches a clone of a's state after tokens[0, fed)
  void plan_prefill(std::span<Active* const> prefills, int64_t budget);  // sets Active::take

  Engine& engine_;
  const SchedulerOptions options_;
  const int64_t max_context_;
  const int64_t vocab_size_;
  const int32_t eos_id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<Generation>, GenerationRequest>> queue_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;

  // Owned by the inference thread.
  std::vector<std::pair<std::shared_ptr<Generation>, GenerationRequest>> admitted_;  // take_queued -> admit
  std::vector<std::unique_ptr<Active>> running_;
  PrefixCache cache_;
  std::unique_ptr<PrefixStore> disk_;   // null: no state files
  std::vector<float> logits_;
  std::vector<float> draft_logits_;   // a draft's logits (Engine::draft writes them)
  std::vector<float> draft_row_;      // a draft position's logits, masked by the constraint
  // One step's batch, kept between steps so that a warm step reuses their storage.
  std::vector<Active*> batch_;
  std::vector<std::span<const int32_t>> feeds_;
  std::vector<Feed> feed_kinds_;
  std::vector<Sequence*> batch_seqs_;
  std::vector<Status> batch_status_;
  std::vector<Active*> prefills_, order_;   // plan_prefill's input and its order

  std::atomic<int64_t> running_count_{0};
  std::atomic<uint64_t> steps_{0}, prefix_hits_{0}, prefix_tokens_reused_{0}, max_batch_{0};
  std::atomic<uint64_t> prefix_snapshots_{0}, prefix_cache_bytes_{0}, disk_hits_{0};
  std::atomic<uint64_t> spec_rounds_{0}, drafted_{0}, accepted_{0};
  std::atomic<int64_t> step_started_ns_{0};   // steady_clock of the running step's start; 0: none
  const int max_drafts_;             // per round; 0 = no speculative decoding
  DraftPlanner planner_;   // measured step costs per draft count, for drafts_for
  std::thread thread_;
};

}  // namespace dsv4::runtime

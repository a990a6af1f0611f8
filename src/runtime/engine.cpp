#include "runtime/engine.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>

#include "kernels/cpu/matmul.h"
#include "model/chunk_undo.h"
#include "model/forward.h"
#include "runtime/drafter.h"
#include "runtime/numa_placement.h"

namespace dsv4::runtime {

namespace {

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

class SequenceImpl final : public Sequence {
 public:
  explicit SequenceImpl(model::SequenceState st) : state(std::move(st)) {}
  int64_t position() const override { return state.pos; }
  std::unique_ptr<Sequence> clone() const override { return std::make_unique<SequenceImpl>(*this); }
  size_t memory_bytes() const override { return state.memory_bytes() + draft.memory_bytes(); }
  void reserve(int64_t positions) override { state.reserve(positions); }
  bool chunk_open() const { return state.undo.start >= 0; }
  model::SequenceState state;
  DraftState draft;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::unique_ptr<model::Model> m, const EngineOptions& opt) : model_(std::move(m)), options_(opt) {
    max_context_ = model_->cfg.max_position_embeddings;
    if (opt.max_context > 0) max_context_ = std::min(max_context_, opt.max_context);
    if (opt.speculative) drafter_ = make_drafter(*model_);
  }
  const io::ModelConfig& config() const override { return model_->cfg; }
  int64_t max_context() const override { return max_context_; }
  std::unique_ptr<Sequence> new_sequence() const override {
    auto s = std::make_unique<SequenceImpl>(model::make_sequence_state(model_->cfg));
    if (drafter_) drafter_->init(*model_, s->draft);
    return s;
  }
  int max_draft_tokens() const override { return drafter_ ? drafter_->max_tokens() : 0; }

  void time_steps(model::StepTimes* times) override { scratch_.times = times; }
  std::map<int, uint64_t> weight_bytes_per_node() const override {
    return model_->checkpoint->resident_bytes_per_node().value_or(std::map<int, uint64_t>());
  }

  Status fill_synthetic(Sequence& seq, int64_t depth, uint64_t seed) override {
    auto* s = dynamic_cast<SequenceImpl*>(&seq);
    if (s == nullptr) return Status::invalid_argument("fill_synthetic: sequence does not belong to this engine");
    if (s->state.pos != 0) return Status::invalid_argument("fill_synthetic: the sequence is not fresh");
    if (depth < 0 || depth > max_context_)
      return Status::out_of_range("fill_synthetic: depth " + std::to_string(depth) + " outside [0, " +
                                  std::to_string(max_context_) + "]");
    model::fill_synthetic_state(s->state, depth, seed);
    return Status::ok_status();
  }

  // Bytes: the target state (model::write_state), whether a drafter state follows (u8), and
  // that state (write_draft_state).
  Status save_sequence(const Sequence& seq, std::vector<uint8_t>* out) const override {
    const auto* s = dynamic_cast<const SequenceImpl*>(&seq);
    if (s == nullptr) return Status::invalid_argument("save_sequence: sequence does not belong to this engine");
    if (s->chunk_open()) return Status::invalid_argument("save_sequence: the sequence's verify chunk is not committed");
    ByteWriter w(*out);
    model::write_state(s->state, w);
    w.put<uint8_t>(drafter_ ? 1 : 0);
    if (drafter_) write_draft_state(s->draft, w);
    return Status::ok_status();
  }

  Result<std::unique_ptr<Sequence>> load_sequence(std::span<const uint8_t> bytes) const override {
    ByteReader r(bytes, "sequence state");
    DSV4_ASSIGN_OR_RETURN(model::SequenceState st, model::read_state(r, model_->cfg, max_context_));
    auto s = std::make_unique<SequenceImpl>(std::move(st));
    uint8_t has_draft = 0;
    DSV4_TRY(r.get(&has_draft));
    if (has_draft != (drafter_ ? 1 : 0))
      return Status::corrupt_data("sequence state: saved by an engine " + std::string(has_draft ? "with" : "without") +
                                  " a drafter");
    if (drafter_) {
      drafter_->init(*model_, s->draft);
      DSV4_TRY(read_draft_state(r, drafter_->row_width(), model_->cfg.sliding_window, model_->cfg.vocab_size,
                                s->state.pos, s->draft));
    }
    if (!r.at_end()) return Status::corrupt_data("sequence state: bytes after the end");
    return std::unique_ptr<Sequence>(std::move(s));
  }

  Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
              std::span<const Feed> feeds, float* logits) override {
    if (seqs.size() != tokens.size()) return Status::invalid_argument("step: one token list per sequence");
    if (!feeds.empty() && feeds.size() != seqs.size()) return Status::invalid_argument("step: one feed kind per sequence");
    auto feed_of = [&](size_t i) { return feeds.empty() ? Feed::append : feeds[i]; };
    const int64_t V = model_->cfg.vocab_size;
    // Nothing below allocates once the buffers have seen this batch shape (STYLE §3): the batch,
    // the streams and the scratch arenas are the engine's and keep their capacity.
    model::Batch& batch = batch_;
    batch.clear();
    for (size_t i = 0; i < seqs.size(); ++i) {
      auto* s = dynamic_cast<SequenceImpl*>(seqs[i]);
      if (s == nullptr) return Status::invalid_argument("step: sequence does not belong to this engine");
      for (size_t j = 0; j < i; ++j)
        if (seqs[j] == seqs[i]) return Status::invalid_argument("step: a sequence appears twice");
      if (tokens[i].empty()) return Status::invalid_argument("step: empty token list");
      for (int32_t t : tokens[i])
        if (t < 0 || t >= V)
          return Status::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                          std::to_string(V) + ")");
      if (s->state.pos + int64_t(tokens[i].size()) > max_context_)
        return Status::out_of_range("sequence of " + std::to_string(s->state.pos + int64_t(tokens[i].size())) +
                                    " tokens exceeds the context limit of " + std::to_string(max_context_));
      if (s->chunk_open()) return Status::invalid_argument("step: the sequence's verify chunk is not committed");
      if (feed_of(i) == Feed::verify && int64_t(tokens[i].size()) > model_->cfg.sliding_window)
        return Status::invalid_argument("step: a verify chunk of " + std::to_string(tokens[i].size()) +
                                        " tokens is longer than the sliding window");
      batch.add(&s->state, tokens[i].data(), int64_t(tokens[i].size()), s->state.pos);
    }
    if (options_.threads > 0) omp_set_num_threads(options_.threads);
    scratch_.begin_step();
    const io::ModelConfig& c = model_->cfg;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (feed_of(i) == Feed::verify) model::undo_begin(c, *batch.segments[i].seq, batch.segments[i].n);
    const int64_t stream_width = model::stream_width(c);
    streams_.resize(size_t(batch.rows() * stream_width));
    const bool taps = drafter_ && drafter_->reads_taps();
    if (taps) taps_.resize(size_t(batch.rows() * drafter_->row_width()));
    model::forward_streams(*model_, batch, streams_.data(), scratch_, taps ? taps_.data() : nullptr);
    logit_rows_.clear();
    for (size_t i = 0; i < seqs.size(); ++i) {
      const model::Segment& seg = batch.segments[i];
      for (int64_t r = feed_of(i) == Feed::verify ? seg.row0 : seg.row0 + seg.n - 1; r < seg.row0 + seg.n; ++r)
        logit_rows_.push_back(r);
    }
    model::head_logits(*model_, model_->w.final_head, streams_.data(), logit_rows_, logits, scratch_);
    if (drafter_) {
      // The drafter sees committed rows only: an append feed's now, a verify chunk's at commit().
      const float* rows = taps ? taps_.data() : streams_.data();
      const int64_t width = drafter_->row_width();
      for (size_t i = 0; i < seqs.size(); ++i) {
        auto* s = static_cast<SequenceImpl*>(seqs[i]);
        const model::Segment& seg = batch.segments[i];
        const float* r = rows + seg.row0 * width;
        if (feed_of(i) == Feed::verify)
          s->draft.staged.assign(r, seg.tokens, seg.start_pos, seg.n, width);
        else
          drafter_->absorb(*model_, s->draft, r, seg.tokens, seg.start_pos, seg.n, scratch_);
      }
    }
    return Status::ok_status();
  }

  Status commit(Sequence& seq, int64_t keep) override {
    auto* s = dynamic_cast<SequenceImpl*>(&seq);
    if (s == nullptr) return Status::invalid_argument("commit: sequence does not belong to this engine");
    if (!s->chunk_open()) return Status::invalid_argument("commit: the sequence has no open verify chunk");
    if (keep < 1 || keep > s->state.undo.n)
      return Status::out_of_range("commit: keep " + std::to_string(keep) + " outside [1, " +
                                  std::to_string(s->state.undo.n) + "]");
    {
      model::ArenaScope scope(scratch_.main);
      model::undo_cut(*model_, s->state, keep, scratch_.main);
    }
    if (drafter_) {
      TargetRows& st = s->draft.staged;
      drafter_->absorb(*model_, s->draft, st.data.data(), st.tokens.data(), st.pos, keep, scratch_);
      st.clear();
    }
    return Status::ok_status();
  }

  Result<int> draft(Sequence& seq, int32_t anchor, const DraftOptions& options, DraftChooser& chooser,
                    int32_t* tokens, float* logits) override {
    auto* s = dynamic_cast<SequenceImpl*>(&seq);
    if (s == nullptr) return Status::invalid_argument("draft: sequence does not belong to this engine");
    if (!drafter_) return Status::unsupported("draft: speculative decoding is off or the checkpoint has no drafter");
    if (s->chunk_open()) return Status::invalid_argument("draft: the sequence's verify chunk is not committed");
    if (anchor < 0 || anchor >= model_->cfg.vocab_size)
      return Status::invalid_argument("draft: anchor token " + std::to_string(anchor) + " is outside the vocabulary");
    if (s->state.pos == 0) return Status::invalid_argument("draft: the sequence has consumed no token");
    DraftOptions o = options;
    o.max_tokens = std::min(o.max_tokens, drafter_->max_tokens());
    if (options_.threads > 0) omp_set_num_threads(options_.threads);
    scratch_.begin_step();
    return drafter_->draft(*model_, s->state, s->draft, anchor, o, chooser, tokens, logits, scratch_);
  }

 private:
  std::unique_ptr<model::Model> model_;
  EngineOptions options_;
  int64_t max_context_ = 0;
  std::unique_ptr<Drafter> drafter_;   // null: no speculative decoding
  // Reused by every step (Engine is used from one thread at a time).
  model::Scratch scratch_;
  model::Batch batch_;
  model::Streams streams_;
  std::vector<float> taps_;   // DSpark: the taps of the step's rows
  std::vector<int64_t> logit_rows_;
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const std::string& model_dir, const EngineOptions& options) {
  io::NodeCopy copy;
  if (options.numa) {
    DSV4_ASSIGN_OR_RETURN(copy, numa_node_copy(model_dir));
  }
  DSV4_ASSIGN_OR_RETURN(auto m, model::load_model(model_dir, {}, copy));
  if (options.populate_weights && m->checkpoint->shard_bytes() < physical_memory_bytes())
    DSV4_TRY(model::populate_weights(*m, options.reread_small_pages).status());
  return open(std::move(m), options);
}

std::unique_ptr<Engine> Engine::open(std::unique_ptr<model::Model> model, const EngineOptions& options) {
  // The kernel choice is process-wide (chosen once, like the ISA dispatch).
  if (options.reference_kernels) kernels::select_matmul_impl(kernels::MatmulImpl::reference);
  return std::make_unique<EngineImpl>(std::move(model), options);
}

}  // namespace dsv4::runtime

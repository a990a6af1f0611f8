#include "runtime/engine.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>

#include "kernels/cpu/matmul.h"
#include "model/forward.h"

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
  std::unique_ptr<Sequence> clone() const override { return std::make_unique<SequenceImpl>(state); }
  size_t memory_bytes() const override { return state.memory_bytes(); }
  void reserve(int64_t positions) override { state.reserve(positions); }
  model::SequenceState state;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::unique_ptr<model::Model> m, const EngineOptions& opt) : model_(std::move(m)), options_(opt) {
    max_context_ = model_->cfg.max_position_embeddings;
    if (opt.max_context > 0) max_context_ = std::min(max_context_, opt.max_context);
  }
  const io::ModelConfig& config() const override { return model_->cfg; }
  int64_t max_context() const override { return max_context_; }
  std::unique_ptr<Sequence> new_sequence() const override {
    return std::make_unique<SequenceImpl>(model::make_sequence_state(model_->cfg));
  }

  void time_steps(model::StepTimes* times) override { scratch_.times = times; }

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

  Status step(std::span<Sequence* const> seqs, std::span<const std::span<const int32_t>> tokens,
              float* logits) override {
    if (seqs.size() != tokens.size()) return Status::invalid_argument("step: one token list per sequence");
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
      batch.add(&s->state, tokens[i].data(), int64_t(tokens[i].size()), s->state.pos);
    }
    if (options_.threads > 0) omp_set_num_threads(options_.threads);
    scratch_.begin_step();
    const io::ModelConfig& c = model_->cfg;
    streams_.resize(size_t(batch.rows() * c.hc_mult * c.hidden_size));
    model::forward_streams(*model_, batch, streams_.data(), scratch_);
    last_.clear();
    for (const auto& seg : batch.segments) last_.push_back(seg.row0 + seg.n - 1);
    model::head_logits(*model_, model_->w.final_head, streams_.data(), last_, logits, scratch_);
    return Status::ok_status();
  }

 private:
  std::unique_ptr<model::Model> model_;
  EngineOptions options_;
  int64_t max_context_ = 0;
  // Reused by every step (Engine is used from one thread at a time).
  model::Scratch scratch_;
  model::Batch batch_;
  model::Streams streams_;
  std::vector<int64_t> last_;
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const std::string& model_dir, const EngineOptions& options) {
  // The kernel choice is process-wide (chosen once, like the ISA dispatch).
  if (options.reference_kernels) kernels::select_matmul_impl(kernels::MatmulImpl::reference);
  DSV4_ASSIGN_OR_RETURN(auto m, model::load_model(model_dir));
  if (options.populate_weights && m->checkpoint->shard_bytes() < physical_memory_bytes())
    DSV4_TRY(m->checkpoint->populate(options.reread_small_pages).status());
  std::unique_ptr<Engine> e = std::make_unique<EngineImpl>(std::move(m), options);
  return e;
}

}  // namespace dsv4::runtime

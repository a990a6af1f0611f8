// DSpark (addendum §A4) as the engine's drafter. Its rows are the target's taps; every committed
// row is absorbed into the per-stage context rings at once (they need nothing from the next
// token), so a draft reads the rings and the anchor only. One round: the draft block over
// [anchor, NOISE x (γ-1)], then the Markov loop (each slot's logits get the term of the token
// drafted before it, and the caller's sampler picks the token), cut at the first slot whose
// confidence is below the threshold (§A5.2 step 1: it depends on draft-side values only, so it
// changes speed, never output).
#include <cmath>

#include "model/dspark.h"
#include "runtime/drafter.h"

namespace dsv4::runtime {

namespace {

class DsparkDrafter final : public Drafter {
 public:
  explicit DsparkDrafter(const model::Model& m)
      : block_(int(m.cfg.dspark.block_size)), width_(model::dspark_tap_width(m.cfg)) {}
  int max_tokens() const override { return block_; }
  int64_t row_width() const override { return width_; }
  bool reads_taps() const override { return true; }
  void init(const model::Model& m, DraftState& ds) const override { ds.dspark = model::make_dspark_state(m); }

  void absorb(const model::Model& m, DraftState& ds, const float* rows, const int32_t*, int64_t pos, int64_t n,
              model::Scratch& s) const override {
    DSV4_CHECK(ds.dspark.pos == pos);
    DSV4_CHECK(model::dspark_absorb(m, ds.dspark, rows, n, s).ok());
  }

  int draft(const model::Model& m, model::SequenceState& seq, DraftState& ds, int32_t anchor,
            const DraftOptions& options, DraftChooser& chooser, int32_t* tokens, float* logits,
            model::Scratch& s) const override {
    DSV4_CHECK(ds.dspark.pos == seq.pos);
    const int64_t V = m.cfg.vocab_size, D = m.cfg.hidden_size;
    model::ArenaScope scope(s.main);
    float* base = s.main.alloc<float>(block_ * V);
    float* y = s.main.alloc<float>(block_ * D);
    DSV4_CHECK(model::dspark_draft_block(m, ds.dspark, anchor, base, y, s).ok());
    int32_t prev = anchor;
    int k = 0;
    for (; k < options.max_tokens; ++k) {
      if (options.confidence_threshold > 0) {
        const float c = model::dspark_confidence(m, y + k * D, prev, s);
        if (1.0f / (1.0f + std::exp(-c)) < options.confidence_threshold) break;
      }
      float* z = logits + k * V;
      std::copy_n(base + k * V, V, z);
      model::dspark_markov_add(m, prev, z, s);
      tokens[k] = chooser.choose(k, std::span<const float>(z, size_t(V)));
      prev = tokens[k];
    }
    return k;
  }

 private:
  int block_;
  int64_t width_;
};

}  // namespace

std::unique_ptr<Drafter> make_dspark_drafter(const model::Model& m) { return std::make_unique<DsparkDrafter>(m); }

}  // namespace dsv4::runtime

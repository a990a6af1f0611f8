// The preview's MTP block as a one-token drafter (spec §5.11). Row p of the MTP block reads the
// main stack's final streams at p and the embedding of the token at p+1, so a committed row can
// be absorbed only once the next token is known; the last one's is the anchor. So committed rows
// wait, and draft() absorbs them all in one pass (the last with the anchor) and reads the logits
// of the last row: they predict the token after the anchor. A request that drafts at every step
// absorbs one row per draft; one that drafts rarely (adaptive drafting) pays nothing per step,
// and one batched pass when it drafts.
//
// The MTP block is a sliding-window block (its compress ratio is 0) whose ring entries are
// position-local (each row's K/V comes from its own inputs), so only the last W waiting rows are
// kept: the draft row attends to the last W positions only.
#include <algorithm>

#include "model/forward.h"
#include "runtime/drafter.h"

namespace dsv4::runtime {

namespace {

class MtpDrafter final : public Drafter {
 public:
  explicit MtpDrafter(const model::Model& m)
      : width_(m.cfg.hc_mult * m.cfg.hidden_size), window_(m.cfg.sliding_window) {}
  int max_tokens() const override { return 1; }
  int64_t row_width() const override { return width_; }
  bool reads_taps() const override { return false; }

  // Room for a window of rows up front, so that no decode step grows the buffers.
  void init(const model::Model&, DraftState& ds) const override {
    ds.waiting.data.reserve(size_t(window_ * width_));
    ds.waiting.tokens.reserve(size_t(window_));
  }

  void absorb(const model::Model&, DraftState& ds, const float* rows, const int32_t* tokens, int64_t pos, int64_t n,
              model::Scratch&) const override {
    ds.waiting.append(rows, tokens, pos, n, width_, window_);
  }

  int draft(const model::Model& m, model::SequenceState& seq, DraftState& ds, int32_t anchor,
            const DraftOptions& options, DraftChooser& chooser, int32_t* tokens, float* logits,
            model::Scratch& s) const override {
    TargetRows& w = ds.waiting;
    if (options.max_tokens <= 0 || w.n == 0) return 0;
    DSV4_CHECK(w.pos + w.n == seq.pos);
    model::ArenaScope scope(s.main);
    int32_t* next = s.main.alloc<int32_t>(w.n);   // row i's next token
    std::copy(w.tokens.begin() + 1, w.tokens.begin() + w.n, next);
    next[w.n - 1] = anchor;
    seq.mtp_pos = w.pos;
    model::mtp_forward(m, seq, w.data.data(), next, w.n, 1, logits, s);
    w.clear();
    tokens[0] = chooser.choose(0, std::span<const float>(logits, size_t(m.cfg.vocab_size)));
    return 1;
  }

 private:
  int64_t width_, window_;
};

}  // namespace

std::unique_ptr<Drafter> make_mtp_drafter(const model::Model& m) { return std::make_unique<MtpDrafter>(m); }

}  // namespace dsv4::runtime

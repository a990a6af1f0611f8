// The preview's MTP block as a one-token drafter (spec §5.11). Row p of the MTP block reads the
// main stack's final streams at p and the embedding of the token at p+1, so a committed row can
// be absorbed only once the next token is known: the last committed row waits for the anchor,
// and draft() absorbs it with the anchor and reads the logits there (they predict the token
// after the anchor).
//
// The MTP block is a sliding-window block (its compress ratio is 0) whose ring entries are
// position-local (each row's K/V comes from its own inputs), so rows older than a window before
// the draft position are skipped: the draft row attends to the last W positions only.
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

  void absorb(const model::Model& m, model::SequenceState& seq, DraftState& ds, const float* rows,
              const int32_t* tokens, int64_t pos, int64_t n, model::Scratch& s) const override {
    if (n <= 0) return;
    TargetRows& w = ds.waiting;
    DSV4_CHECK(w.n == 0 || w.pos + w.n == pos);
    // All rows in order: the waiting one, then the new ones; every row but the last has its next
    // token. Only the rows within a window of the last one can matter to a draft.
    const int64_t first = w.n > 0 ? w.pos : pos, last = pos + n - 1;
    const int64_t from = std::max(first, last - window_ + 1);
    if (from < last) {
      model::ArenaScope scope(s.main);
      const int64_t count = last - from;   // rows from .. last-1 are absorbed
      float* h = s.main.alloc<float>(count * width_);
      int32_t* next = s.main.alloc<int32_t>(count);
      for (int64_t p = from; p < last; ++p) {
        const int64_t i = p - from;
        const float* src = p < pos ? w.data.data() + (p - w.pos) * width_ : rows + (p - pos) * width_;
        std::copy_n(src, width_, h + i * width_);
        next[i] = p + 1 < pos ? w.tokens[size_t(p + 1 - w.pos)] : tokens[p + 1 - pos];
      }
      seq.mtp_pos = from;
      model::mtp_forward(m, seq, h, next, count, 0, nullptr, s);
    }
    w.assign(rows + (n - 1) * width_, tokens + n - 1, last, 1, width_);
  }

  int draft(const model::Model& m, model::SequenceState& seq, DraftState& ds, int32_t anchor,
            const DraftOptions& options, DraftChooser& chooser, int32_t* tokens, float* logits,
            model::Scratch& s) const override {
    TargetRows& w = ds.waiting;
    if (options.max_tokens <= 0 || w.n != 1) return 0;
    DSV4_CHECK(w.pos == seq.pos - 1);
    seq.mtp_pos = w.pos;
    model::mtp_forward(m, seq, w.data.data(), &anchor, 1, 1, logits, s);
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

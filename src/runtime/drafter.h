// The engine's drafters for speculative decoding (addendum §A4-§A5): the preview's MTP block
// (spec §5.11) and DSpark (addendum §A4), behind one interface so that the engine and the
// scheduler run both through the same verify/commit machinery. Internal to the runtime layer.
//
// A drafter reads one row per target position ("target rows"): the final residual streams for
// MTP, the taps of the DSpark target layers (addendum §A4.2). The engine hands it the rows of
// committed positions only: right after an append step, and after commit() for a verify chunk
// (its rows wait in DraftState::staged until then), so that no rejected token ever reaches the
// drafter's state and nothing there needs undoing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/byte_io.h"
#include "model/dspark.h"
#include "model/model.h"
#include "model/scratch.h"
#include "model/state.h"
#include "runtime/engine.h"

namespace dsv4::runtime {

// Target rows of consecutive positions.
struct TargetRows {
  std::vector<float> data;       // [n, width]
  std::vector<int32_t> tokens;   // the token fed at each row's position
  int64_t pos = 0, n = 0;

  void assign(const float* rows, const int32_t* toks, int64_t pos0, int64_t count, int64_t width);
  // Appends the rows of positions pos0.. (continuing the held ones) and keeps only the last `cap`.
  // Once the buffers have held `cap` rows, this allocates nothing.
  void append(const float* rows, const int32_t* toks, int64_t pos0, int64_t count, int64_t width, int64_t cap);
  // Keeps the capacity (no allocation at the next assign) but no rows, so a clone copies none.
  void clear() {
    data.clear();
    tokens.clear();
    n = 0;
  }
};

// Per-sequence drafter state, kept next to the target state (copied with it by clone()).
struct DraftState {
  TargetRows waiting;   // MTP: committed rows not absorbed yet (the last window of them)
  TargetRows staged;    // the open verify chunk's rows, until commit() says which are kept
  model::DsparkState dspark;     // DSpark: the per-stage context rings (addendum §A4.4)
  size_t memory_bytes() const;
};

// The drafter state as bytes, after the target state (Engine::save_sequence).
// REQUIRES: no verify chunk is open (staged is empty).
void write_draft_state(const DraftState& ds, ByteWriter& w);
// Reads it back into `ds`, a fresh state from Drafter::init, checking it against that and the
// target position: waiting rows of `row_width` floats, at most `max_waiting` of them, ending
// at seq_pos, their tokens in [0, vocab); DSpark rings of the fresh shape at seq_pos.
Status read_draft_state(ByteReader& r, int64_t row_width, int64_t max_waiting, int64_t vocab, int64_t seq_pos,
                        DraftState& ds);

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual int max_tokens() const = 0;     // drafts per round at most
  virtual int64_t row_width() const = 0;  // floats per target row
  virtual bool reads_taps() const = 0;    // rows are DSpark taps, not final streams
  virtual void init(const model::Model& m, DraftState& ds) const {}
  // The rows of committed positions `rows` (positions continuing the ones absorbed or waiting)
  // enter the drafter's state. Temporaries come from s.
  virtual void absorb(const model::Model& m, DraftState& ds, const float* rows, const int32_t* tokens, int64_t pos,
                      int64_t n, model::Scratch& s) const = 0;
  // One draft round after the committed prefix, with `anchor` at position seq.pos (Engine::draft).
  virtual int draft(const model::Model& m, model::SequenceState& seq, DraftState& ds, int32_t anchor,
                    const DraftOptions& options, DraftChooser& chooser, int32_t* tokens, float* logits,
                    model::Scratch& s) const = 0;
};

// The checkpoint's drafter, or nullptr when it has none.
std::unique_ptr<Drafter> make_drafter(const model::Model& m);

}  // namespace dsv4::runtime

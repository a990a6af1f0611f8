// Cutting a chunk back to a prefix of its tokens (addendum §A5.4-§A5.5). Speculative
// verification feeds [anchor, d_1..d_k] as one chunk through the ordinary chunked forward (spec
// §5.13), then keeps only the anchor and the accepted drafts. Afterwards the sequence state must
// be exactly, bit for bit, the state of a run that never saw the rejected tokens.
//
// Scheme ("snapshot, then replay", the alternative §A5.5 allows): before the chunk, save what it
// will overwrite (ring slots, compressor state rows, entry counts); while it runs, log the
// compressor rows it pushes; to cut back, restore the saved parts and replay the kept prefix's
// compressor rows through the same state machine. Ring slots of kept positions stay as written
// (the chunk writes n <= W distinct slots); compressed entries and indexer keys are append-only,
// so they are truncated to the count before the chunk and the replay appends the kept ones again.
// Every step is the same code on the same inputs as the uncut run, hence bit-identical.
//
// V4.1 (v4.1 §9 "Rollback"): the same for the rings and the ratio-2 pending pair; a KV source's
// packed latents and index keys are cut to floor((P'+1)/m) entries (the kept ones are already as
// a run without the rejected tokens writes them); the Engram lookback is rebuilt from the one
// before the chunk and the kept tokens' compressed ids.
#pragma once

#include <cstdint>

#include "model/batch.h"
#include "model/model.h"
#include "model/scratch.h"
#include "model/state.h"

namespace dsv4::model {

// Records the undo information for a chunk of n tokens about to be fed at seq.pos.
// REQUIRES: 1 <= n <= sliding_window (so the chunk's ring slots are distinct).
void undo_begin(const io::ModelConfig& cfg, SequenceState& seq, int64_t n);

// Called by the forward for each compressor push of a recorded chunk's row i: logs the row.
void undo_log_push(ChunkUndo::Saved& saved, int64_t i, int64_t width, const float* kvp, const float* score);

// Keeps the first `keep` tokens of the recorded chunk and undoes the rest; seq.pos becomes
// start + keep. Ends the record. REQUIRES: a recorded chunk that was fed completely,
// 0 <= keep <= n. Temporaries come from `a`.
void undo_cut(const Model& m, SequenceState& seq, int64_t keep, Arena& a);

}  // namespace dsv4::model

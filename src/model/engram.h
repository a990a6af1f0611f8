// Engram (v4.1 §5.3): n-gram hash tables whose rows are added into the residual streams, through
// a per-stream gate, before some layers. The hashing (§5.3.2) runs once per chunk for every
// Engram layer; each Engram layer then reads its rows of the FP8 table (a few per token, from the
// mapping: the tables are never read up front) and updates the streams.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/config.h"

namespace dsv4::model {

struct BlockWeights;
struct Model;
struct Scratch;

// The compressed id of a position inside an image span (v4.1 §5.3.2 "DEAD"): blocks every n-gram
// that reaches it. The text forward never produces it; the hashing rule keeps it.
constexpr int32_t kEngramDead = -1;

// The hashing constants of one Engram layer (v4.1 §5.3.2).
struct EngramHashLayer {
  std::vector<int64_t> mult;     // [max_ngram_size]: one multiplier per lookback
  std::vector<int64_t> prime;    // [columns]: column (n-2)·n_heads + h
  std::vector<int64_t> offset;   // [columns]: Σ of the primes of the earlier columns
};

struct EngramHasher {
  std::vector<int32_t> cmap;     // raw token id -> compressed id (v4.1 §5.3.1)
  int32_t pad = 0;               // cmap[engram_pad_token_id]
  int64_t max_ngram = 0, n_heads = 0;
  std::vector<EngramHashLayer> layers;   // per entry of engram_layer_ids
  int64_t columns() const { return (max_ngram - 1) * n_heads; }

  // rows[col] (table rows of layer k, `columns()` of them) for one position from its lookback
  // tok[s] = the compressed id s positions back (s < max_ngram), or the pad where that position
  // is before the sequence start or behind a DEAD one (engram_lookback).
  void rows(int64_t k, const int32_t* tok, int64_t* rows) const;
};

// The released multipliers, keyed by layer id (v4.1 §5.3.2: numpy's default_rng(10007·layer)
// drawn once and shipped as constants, since numpy does not promise stream stability). A config
// whose Engram layers are not among them is refused (make_engram_hasher).
// Returns false when layer has none.
bool engram_multipliers(int64_t layer, int64_t out[4]);

// The token map file a V4.1 checkpoint directory holds (v4.1 §5.3.1: generated from the
// release's tokenizer once, shipped as data): int32 little-endian, one per vocabulary id.
inline constexpr const char* kEngramTokenMapFile = "engram_token_map.i32";

// Reads <dir>/engram_token_map.i32 and builds the hasher. Errors: no such file, a map that is not
// a first-appearance numbering of engram_compressed_vocab_size ids, Engram layers without known
// multipliers, a max n-gram size other than the release's 4.
Result<EngramHasher> load_engram_hasher(const std::string& dir, const io::ModelConfig& c);
// The same from a map in memory (tests).
Result<EngramHasher> make_engram_hasher(const io::ModelConfig& c, std::vector<int32_t> cmap);

// The lookback of position p of a chunk (v4.1 §5.3.2, §9 step 1): tok[s] for s < max_ngram from
// the chunk's compressed ids ids[0..i] (p = P + i) and, further back, `history` (the compressed
// ids of positions P-1, P-2, ..., as many as max_ngram - 1, valid where >= 0 positions exist).
// Sticky: once a lookback is before position 0 or DEAD, it and every longer one are the pad.
void engram_lookback(const EngramHasher& h, const int32_t* ids, int64_t i, int64_t P, const int32_t* history,
                     int32_t* tok);

// The lookback history (engram_lookback's `history`: compressed ids of positions P-1, P-2, ...)
// after n more positions whose compressed ids are ids[0..n) (v4.1 §9 step 1).
void engram_push_history(std::vector<int32_t>& history, const int32_t* ids, int64_t n);

// X [rows, n_hc, D] (in place) += gate · value of Engram layer b (v4.1 §5.3.3-§5.3.4), for rows
// whose table rows are hash_rows [rows, columns] (this layer's). Temporaries come from s.
void engram_forward(const Model& m, const BlockWeights& b, const int64_t* hash_rows, int64_t rows, float* X,
                    Scratch& s);

}  // namespace dsv4::model

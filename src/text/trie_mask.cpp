#include "text/trie_mask.h"

#include <algorithm>
#include <limits>

namespace dsv4::text {

bool mask_logits(const VocabTrie& vocab, const TokenBits& bits, std::span<const int32_t> also, std::span<float> logits) {
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  const size_t known = std::min(logits.size(), size_t(vocab.vocab_size()));
  // The added tokens let through keep their logits (they are never in `bits`).
  float kept[4];
  DSV4_CHECK(also.size() <= std::size(kept));
  bool any = false;
  for (size_t i = 0; i < also.size(); ++i) {
    const bool in = also[i] >= 0 && size_t(also[i]) < known;
    kept[i] = in ? logits[size_t(also[i])] : kBanned;
    any |= in;
  }
  for (size_t w = 0; w * 64 < known; ++w) {
    const uint64_t word = bits[w];
    const size_t begin = w * 64, end = std::min(begin + 64, known);
    any |= (end - begin == 64 ? word : word & ((uint64_t(1) << (end - begin)) - 1)) != 0;
    if (word == ~uint64_t(0) && end - begin == 64) continue;
    for (size_t t = begin; t < end; ++t)
      if (!(word >> (t - begin) & 1)) logits[t] = kBanned;
  }
  for (size_t t = known; t < logits.size(); ++t) logits[t] = kBanned;
  for (size_t i = 0; i < also.size(); ++i)
    if (also[i] >= 0 && size_t(also[i]) < known) logits[size_t(also[i])] = kept[i];
  return any;
}

}  // namespace dsv4::text

// Engram hashing (v4.1 §5.3.2; §13 items 2-3): the released constants, hash rows of a fixed
// sequence as test vectors, and the lookback at a sequence start, behind a DEAD position and
// across chunk boundaries.
#include "model/engram.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "io/config.h"
#include "io/v41_release_config.h"

namespace dsv4::model {
namespace {

io::ModelConfig release_config() {
  auto c = io::parse_config(test::kV41ReleaseConfig, "release");
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

// A stand-in token map with the released counts: raw id -> id mod 99092 (first-appearance order).
EngramHasher release_hasher() {
  const io::ModelConfig c = release_config();
  std::vector<int32_t> cmap(size_t(c.vocab_size));
  for (size_t i = 0; i < cmap.size(); ++i) cmap[i] = int32_t(i % 99092);
  auto h = make_engram_hasher(c, std::move(cmap));
  EXPECT_TRUE(h.ok()) << h.status().to_string();
  return std::move(*h);
}

TEST(EngramHash, ReleasedConstants) {
  const EngramHasher h = release_hasher();
  ASSERT_EQ(h.layers.size(), 2u);
  EXPECT_EQ(h.columns(), 24);
  EXPECT_EQ(h.pad, 2);
  // v4.1 §5.3.2: multipliers of layers 1 and 14.
  EXPECT_EQ(h.layers[0].mult, (std::vector<int64_t>{76632096046245, 4839876093313, 35959672319349, 73987337458391}));
  EXPECT_EQ(h.layers[1].mult, (std::vector<int64_t>{67716810739261, 51510806800915, 30921347202721, 82619226485591}));
  // The primes, n-gram size major, head minor; their sums are the table sizes.
  EXPECT_EQ(h.layers[0].prime, (std::vector<int64_t>{
                                   16000057, 16000079, 16000081, 16000097, 16000121, 16000129, 16000133, 16000183,
                                   16000189, 16000207, 16000211, 16000253, 16000277, 16000289, 16000307, 16000321,
                                   16000339, 16000381, 16000393, 16000399, 16000403, 16000409, 16000447, 16000463}));
  EXPECT_EQ(h.layers[1].prime, (std::vector<int64_t>{
                                   16000477, 16000487, 16000499, 16000507, 16000511, 16000573, 16000609, 16000627,
                                   16000667, 16000669, 16000693, 16000697, 16000711, 16000729, 16000759, 16000769,
                                   16000781, 16000799, 16000813, 16000819, 16000841, 16000877, 16000879, 16000889}));
  for (size_t k = 0; k < 2; ++k) {
    const EngramHashLayer& L = h.layers[k];
    EXPECT_EQ(std::accumulate(L.prime.begin(), L.prime.end(), int64_t(0)), k == 0 ? 384006168 : 384016682);
    EXPECT_EQ(L.offset[0], 0);
    for (size_t col = 1; col < 24; ++col) EXPECT_EQ(L.offset[col], L.offset[col - 1] + L.prime[col - 1]);
  }
}

// Rows of every position of one chunk at sequence start, through engram_lookback.
std::vector<int64_t> chunk_rows(const EngramHasher& h, const std::vector<int32_t>& ids, int64_t k) {
  std::vector<int64_t> out;
  const int32_t none[3] = {kEngramDead, kEngramDead, kEngramDead};
  for (int64_t i = 0; i < int64_t(ids.size()); ++i) {
    int32_t tok[4];
    engram_lookback(h, ids.data(), i, 0, none, tok);
    int64_t r[24];
    h.rows(k, tok, r);
    out.insert(out.end(), r, r + 24);
  }
  return out;
}

// Test vectors computed from the rules of v4.1 §5.3.2 by an independent script (Python integers).
TEST(EngramHash, RowsOfAFixedSequence) {
  const EngramHasher h = release_hasher();
  const std::vector<int32_t> ids = {0, 17, 4242, 99091, 5, 5, 12345, 2};
  const std::vector<int64_t> k0 = chunk_rows(h, ids, 0), k1 = chunk_rows(h, ids, 1);
  EXPECT_EQ(std::vector<int64_t>(k0.begin() + 3 * 24, k0.begin() + 4 * 24),
            (std::vector<int64_t>{10758324,  24779415,  42020388,  60472324,  68565841,  94841369,  109399929, 115298951,
                                  130326290, 146788273, 172607272, 188893333, 199373781, 217401913, 228428379, 253821629,
                                  266948377, 281504228, 293415827, 310568755, 333855025, 338559696, 364514235, 380806667}));
  EXPECT_EQ(std::vector<int64_t>(k1.begin(), k1.begin() + 24),   // position 0: three pad lookbacks
            (std::vector<int64_t>{14361964,  29977809,  32716444,  61209771,  67456205,  84275051,  108494439, 120604547,
                                  132225184, 150270452, 174805952, 178895254, 193207923, 211610196, 226280582, 252505246,
                                  261362261, 279862797, 301364059, 312864848, 328367036, 349372619, 363873742, 372375971}));
  EXPECT_EQ(std::vector<int64_t>(k1.begin() + 7 * 24, k1.end()),
            (std::vector<int64_t>{13515235,  25722972,  37827947,  51628878,  66648833,  93615889,  99456457,  120791798,
                                  140659262, 155676110, 161421279, 191991683, 203610037, 215407379, 227980173, 243832087,
                                  269404103, 277808827, 299681249, 313924795, 330345546, 343490681, 354188002, 375970839}));
  int64_t sum = std::accumulate(k0.begin(), k0.end(), int64_t(0)) + std::accumulate(k1.begin(), k1.end(), int64_t(0));
  EXPECT_EQ(sum, 73712808081);
  for (size_t i = 0; i < k0.size(); ++i) {
    EXPECT_LT(k0[i], 384006168);
    EXPECT_LT(k1[i], 384016682);
  }
}

TEST(EngramHash, LookbackPadsAtTheStartAndBehindADeadPosition) {
  const EngramHasher h = release_hasher();
  const int32_t none[3] = {kEngramDead, kEngramDead, kEngramDead};
  const std::vector<int32_t> ids = {7, 8, kEngramDead, 9, 10, 11};
  int32_t tok[4];
  engram_lookback(h, ids.data(), 1, 0, none, tok);   // position 1: lookbacks 2, 3 before the start
  EXPECT_EQ(std::vector<int32_t>(tok, tok + 4), (std::vector<int32_t>{8, 7, 2, 2}));
  engram_lookback(h, ids.data(), 4, 0, none, tok);   // position 4: the DEAD at 2 blocks lookbacks 2 and 3
  EXPECT_EQ(std::vector<int32_t>(tok, tok + 4), (std::vector<int32_t>{10, 9, 2, 2}));
  engram_lookback(h, ids.data(), 5, 0, none, tok);
  EXPECT_EQ(std::vector<int32_t>(tok, tok + 4), (std::vector<int32_t>{11, 10, 9, 2}));
}

TEST(EngramHash, ChunkBoundariesGiveTheOneShotLookback) {
  const EngramHasher h = release_hasher();
  const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  const int32_t none[3] = {kEngramDead, kEngramDead, kEngramDead};
  for (int64_t cut = 1; cut <= 4; ++cut) {   // the chunk starts at position `cut`
    SCOPED_TRACE(cut);
    const int32_t history[3] = {ids[size_t(cut - 1)], cut >= 2 ? ids[size_t(cut - 2)] : kEngramDead,
                                cut >= 3 ? ids[size_t(cut - 3)] : kEngramDead};
    for (int64_t i = 0; cut + i < int64_t(ids.size()); ++i) {
      int32_t whole[4], chunked[4];
      engram_lookback(h, ids.data(), cut + i, 0, none, whole);
      engram_lookback(h, ids.data() + cut, i, cut, history, chunked);
      EXPECT_EQ(std::vector<int32_t>(whole, whole + 4), std::vector<int32_t>(chunked, chunked + 4)) << i;
    }
  }
}

TEST(EngramHash, RefusesABadTokenMap) {
  const io::ModelConfig c = release_config();
  std::vector<int32_t> cmap(size_t(c.vocab_size), 0);
  EXPECT_EQ(make_engram_hasher(c, cmap).status().code(), StatusCode::corrupt_data);   // 1 id, not 99092
  for (size_t i = 0; i < cmap.size(); ++i) cmap[i] = int32_t(i % 99092);
  cmap[10] = 11;   // 11 before 10: not a first-appearance numbering
  EXPECT_EQ(make_engram_hasher(c, cmap).status().code(), StatusCode::corrupt_data);
}

}  // namespace
}  // namespace dsv4::model

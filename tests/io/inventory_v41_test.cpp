// The V4.1-Flash tensor inventory for the released config reconciles with the census of v4.1
// §3.2 and §3.6 (INV41: 96,085 tensors, 510,286,023,000 bytes) and the per-layer counts of §3.4,
// §3.5, as the headers spell the tensors (FP4 experts as I8).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "io/config.h"
#include "io/inventory.h"
#include "io/inventory_v41.h"
#include "io/v41_release_config.h"

namespace dsv4::io {
namespace {

struct Census {
  uint64_t tensors = 0, bytes = 0;
  void add(const TensorSpec& t) {
    ++tensors;
    bytes += t.nbytes();
  }
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

ModelConfig release() {
  auto c = parse_config(test::kV41ReleaseConfig, "config.json");
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

TEST(InventoryV41, CensusIsTheReleases) {
  const auto tensors = expected_tensors(release());
  Census total, engram_tables, routed, vision, dspark;
  std::map<DType, Census> by_dtype;
  std::map<std::string, uint64_t> per_block;   // "layers.N." / "mtp.S." -> tensors
  std::set<std::string> names;
  for (const TensorSpec& spec : tensors) {
    const TensorSpec t = stored_form(spec);
    EXPECT_TRUE(names.insert(t.name).second) << "duplicate " << t.name;
    total.add(t);
    by_dtype[t.dtype].add(t);
    const std::string& n = t.name;
    if (n.find(".engram.embed.") != std::string::npos) engram_tables.add(t);
    if (n.find(".ffn.experts.") != std::string::npos) routed.add(t);
    if (starts_with(n, "vision.") || starts_with(n, "aligner.") || starts_with(n, "image_")) vision.add(t);
    if (starts_with(n, "mtp.")) dspark.add(t);
    if (starts_with(n, "layers.") || starts_with(n, "mtp."))
      ++per_block[n.substr(0, n.find('.', n.find('.') + 1) + 1)];
  }
  // v4.1 §3.6.
  EXPECT_EQ(total.tensors, 96085u);
  EXPECT_EQ(total.bytes, 510286023000u);
  // v4.1 §3.2, per storage dtype.
  EXPECT_EQ(by_dtype[DType::bf16].tensors, 520u);
  EXPECT_EQ(by_dtype[DType::bf16].bytes, 3952883712u);
  EXPECT_EQ(by_dtype[DType::f32].tensors, 387u);
  EXPECT_EQ(by_dtype[DType::f32].bytes, 169229128u);
  EXPECT_EQ(by_dtype[DType::fp8_e4m3].tensors, 357u);
  EXPECT_EQ(by_dtype[DType::fp8_e4m3].bytes, 204015223296u);
  EXPECT_EQ(by_dtype[DType::fp8_e8m0].tensors, 47589u);
  EXPECT_EQ(by_dtype[DType::fp8_e8m0].bytes, 23563015184u);
  EXPECT_EQ(by_dtype[DType::i8].tensors, 47232u);
  EXPECT_EQ(by_dtype[DType::i8].bytes, 278585671680u);
  EXPECT_EQ(by_dtype.size(), 5u);
  // v4.1 §3.6, the parts. Engram tables: weight + scale of both layers.
  EXPECT_EQ(engram_tables.bytes, 202758032400u);
  EXPECT_EQ(routed.bytes, 295997276160u);
  EXPECT_EQ(vision.tensors, 266u);
  EXPECT_EQ(vision.bytes, 970536960u);
  EXPECT_EQ(dspark.tensors, 2401u);
  EXPECT_EQ(dspark.bytes, 7932874632u);
  // v4.1 §3.4, §3.5: tensors per block.
  for (int l = 0; l < 40; ++l) {
    uint64_t want = 2334;
    if (l == 1) want = 2340;
    if (l == 2 || l == 8) want = 2342;
    if (l == 14) want = 2348;
    if (l == 20) want = 2341;
    if (l == 24 || l == 28 || l == 32 || l == 36) want = 2337;
    EXPECT_EQ(per_block["layers." + std::to_string(l) + "."], want) << "layer " << l;
  }
  EXPECT_EQ(per_block["mtp.0."], 801u);
  EXPECT_EQ(per_block["mtp.1."], 798u);
  EXPECT_EQ(per_block["mtp.2."], 802u);
  EXPECT_EQ(per_block.size(), 43u);
}

// v4.1 §3.3, §3.4, §13.1: presence by role, and what V4 had that V4.1 does not.
TEST(InventoryV41, TensorsFollowTheLayerRoles) {
  const ModelConfig c = release();
  const V41Inventory inv = v41_inventory(c);
  ASSERT_EQ(inv.blocks.size(), 40u);
  ASSERT_EQ(inv.dspark.stages.size(), 3u);
  for (const V41BlockSpec& b : inv.blocks) {
    SCOPED_TRACE("layer " + std::to_string(b.layer));
    const bool kv_source = b.layer == 2 || b.layer == 8 || b.layer == 14 || b.layer == 20;
    EXPECT_EQ(b.attn.compressor.has_value(), kv_source);
    if (kv_source) {
      EXPECT_EQ(b.attn.compressor->wgate.has_value(), b.layer != 20);   // ratio 1: no gate
    }
    EXPECT_EQ(b.attn.indexer.has_value(), kv_source || (b.layer >= 24 && b.layer % 4 == 0));
    if (b.attn.indexer) {
      EXPECT_EQ(b.attn.indexer->keys.has_value(), kv_source);
    }
    EXPECT_EQ(b.engram.has_value(), b.layer == 1 || b.layer == 14);
    EXPECT_EQ(b.ffn.experts.size(), 384u);
    EXPECT_EQ(b.ffn.bias_vl.name, "layers." + std::to_string(b.layer) + ".ffn.gate.bias_vl");
  }
  for (const V41BlockSpec& s : inv.dspark.stages) {
    EXPECT_FALSE(s.attn.compressor || s.attn.indexer || s.engram);
    EXPECT_EQ(s.ffn.experts.size(), 128u);
    EXPECT_EQ(s.ffn.bias_vl.shape, (std::vector<int64_t>{128}));
  }
  EXPECT_EQ(inv.dspark.main_proj.weight.shape, (std::vector<int64_t>{5120, 15360}));
  EXPECT_EQ(inv.dspark.main_proj.scale->shape, (std::vector<int64_t>{160, 480}));
  EXPECT_EQ(inv.dspark.markov_embed.weight.name, "mtp.2.markov_head.embed.weight");
  EXPECT_EQ(inv.dspark.confidence_proj.weight.shape, (std::vector<int64_t>{1, 5376}));
  // 32x32 FP8 blocks and per-32 Engram row scales (v4.1 §3.2, §3.4).
  const V41BlockSpec& l14 = inv.blocks[14];
  EXPECT_EQ(l14.attn.wq_b.scale->shape, (std::vector<int64_t>{1024, 40}));
  EXPECT_EQ(l14.engram->embed.weight.shape, (std::vector<int64_t>{384016682, 256}));
  EXPECT_EQ(l14.engram->embed.scale->shape, (std::vector<int64_t>{384016682, 8}));
  EXPECT_EQ(l14.engram->wkv.scale->shape, (std::vector<int64_t>{800, 192}));
  EXPECT_EQ(l14.ffn.experts[0].w2.weight.shape, (std::vector<int64_t>{5120, 2304}));   // fp4, I8 [5120, 1152]
  EXPECT_EQ(l14.ffn.experts[0].w2.scale->shape, (std::vector<int64_t>{5120, 72}));
  for (const TensorSpec& t : expected_tensors(c)) {
    EXPECT_EQ(t.name.find("hc_head"), std::string::npos) << t.name;   // v4.1 §3.1: none
    EXPECT_EQ(t.name.find(".ape"), std::string::npos) << t.name;
    EXPECT_EQ(t.name.find("tid2eid"), std::string::npos) << t.name;
  }
}

}  // namespace
}  // namespace dsv4::io

#include "io/inventory.h"

#include "io/inventory_v41.h"
#include "io/tensor_builder.h"

namespace dsv4::io {

namespace {

// Builds the typed V4 description (the tensors come from TensorBuilder, in the order built here).
struct Builder : TensorBuilder {
  const ModelConfig& c;
  Builder(const ModelConfig& cfg, std::vector<TensorSpec>* out) : TensorBuilder{out, 128}, c(cfg) {}

  // spec §5.2: a block site mixes (2 + n)·n values with 3 scales (pre, post, comb); a head n with 1.
  HcSpec hc(const std::string& site, int64_t mix, int64_t scales) {
    return TensorBuilder::hc(site, mix, scales, c.hc_mult * c.hidden_size);
  }
  // spec §5.5: width c·d with c = 2 when windows overlap (CSA).
  CompressorSpec compressor(const std::string& p, int64_t ratio, int64_t dim, bool overlap) {
    const int64_t width = (overlap ? 2 : 1) * dim;
    CompressorSpec s;
    s.wkv = bf16(p + "wkv", width, c.hidden_size);
    s.wgate = bf16(p + "wgate", width, c.hidden_size);
    s.ape = add(p + "ape", DType::f32, {ratio, width});
    s.norm = add(p + "norm.weight", DType::bf16, {dim});
    s.ratio = ratio;
    s.dim = dim;
    s.overlap = overlap;
    return s;
  }
  ExpertSpec expert(const std::string& p, bool fp4_weights) {
    return TensorBuilder::expert(p, c.hidden_size, c.moe_intermediate_size, fp4_weights);
  }

  // spec §3.4 (and §3.5 for the MTP block; addendum §A3.3 for the DSpark stages: m = 0 and
  // non-hash routing, like the MTP block).
  BlockSpec block(int64_t layer) {
    const std::string p = block_prefix(c, layer);
    const int64_t D = c.hidden_size, H = c.num_attention_heads, Dh = c.head_dim, n = c.hc_mult;
    BlockSpec b;
    b.layer = layer;
    b.kind = c.layer_kind(layer);
    b.hc_attn = hc(p + "hc_attn", (2 + n) * n, 3);
    b.hc_ffn = hc(p + "hc_ffn", (2 + n) * n, 3);
    b.attn_norm = add(p + "attn_norm.weight", DType::bf16, {D});
    b.ffn_norm = add(p + "ffn_norm.weight", DType::bf16, {D});

    const std::string a = p + "attn.";
    AttentionSpec& at = b.attn;
    at.wq_a = fp8(a + "wq_a", c.q_lora_rank, D);
    at.q_norm = add(a + "q_norm.weight", DType::bf16, {c.q_lora_rank});
    at.wq_b = fp8(a + "wq_b", H * Dh, c.q_lora_rank);
    at.wkv = fp8(a + "wkv", Dh, D);
    at.kv_norm = add(a + "kv_norm.weight", DType::bf16, {Dh});
    at.wo_a = fp8(a + "wo_a", c.o_groups * c.o_lora_rank, H * Dh / c.o_groups);
    at.wo_b = fp8(a + "wo_b", D, c.o_groups * c.o_lora_rank);
    at.attn_sink = add(a + "attn_sink", DType::f32, {H});
    // spec §5.5, §5.6: CSA's compressors (main and indexer) overlap windows, HCA's does not.
    const bool csa = b.kind == LayerKind::csa;
    if (b.kind != LayerKind::swa) at.compressor = compressor(a + "compressor.", c.ratio(layer), Dh, csa);
    if (csa) {
      const std::string ip = a + "indexer.";
      IndexerSpec& ix = at.indexer.emplace();
      ix.wq_b = fp8(ip + "wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank);
      ix.weights_proj = bf16(ip + "weights_proj", c.index_n_heads, D);
      ix.compressor = compressor(ip + "compressor.", c.ratio(layer), c.index_head_dim, true);
    }

    const std::string f = p + "ffn.";
    MoeSpec& m = b.ffn;
    m.gate = bf16(f + "gate", c.n_routed_experts, D);
    const bool is_mtp = layer >= c.num_hidden_layers;
    if (!is_mtp && layer < c.num_hash_layers)
      m.tid2eid = add(f + "gate.tid2eid", DType::i64, {c.vocab_size, c.num_experts_per_tok});
    else
      m.bias = add(f + "gate.bias", DType::f32, {c.n_routed_experts});
    m.shared = expert(f + "shared_experts.", false);
    for (int64_t e = 0; e < c.n_routed_experts; ++e)
      m.experts.push_back(expert(f + "experts." + std::to_string(e) + ".", c.experts_fp4));
    return b;
  }

  HeadSpec head(const std::string& p) {
    HeadSpec h;
    h.norm = add(p + "norm.weight", DType::bf16, {c.hidden_size});
    h.hc = hc(p + "hc_head", c.hc_mult, 1);
    return h;
  }

  // addendum §A3.3, stage by stage.
  DsparkSpec dspark() {
    const int64_t D = c.hidden_size, V = c.vocab_size, r = c.dspark.markov_rank, ns = c.drafter_blocks();
    const int64_t taps = int64_t(c.dspark.target_layer_ids.size());
    DsparkSpec d;
    for (int64_t s = 0; s < ns; ++s) {
      const std::string p = block_prefix(c, c.num_hidden_layers + s);
      d.stages.push_back(block(c.num_hidden_layers + s));
      if (s == 0) {
        d.main_proj = fp8(p + "main_proj", D, taps * D);   // |T| taps of width D (addendum §A4.3)
        d.main_norm = add(p + "main_norm.weight", DType::bf16, {D});
      }
      if (s == ns - 1) {
        d.head = head(p);
        d.markov_w1 = bf16(p + "markov_head.markov_w1", V, r);
        d.markov_w2 = bf16(p + "markov_head.markov_w2", V, r);
        d.confidence_proj = bf16(p + "confidence_head.proj", 1, D + r);
      }
    }
    return d;
  }

  // spec §3.3–§3.5, in file order.
  Inventory inventory() {
    const int64_t D = c.hidden_size;
    Inventory inv;
    inv.embed = add("embed.weight", DType::bf16, {c.vocab_size, D});
    inv.head = bf16("head", c.vocab_size, D);
    inv.final_head = head("");
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) inv.blocks.push_back(block(l));
    if (c.drafter() == DrafterKind::mtp) {
      const std::string p = block_prefix(c, c.num_hidden_layers);
      MtpSpec& mtp = inv.mtp.emplace();
      mtp.block = block(c.num_hidden_layers);
      mtp.e_proj = fp8(p + "e_proj", D, D);
      mtp.h_proj = fp8(p + "h_proj", D, D);
      mtp.enorm = add(p + "enorm.weight", DType::bf16, {D});
      mtp.hnorm = add(p + "hnorm.weight", DType::bf16, {D});
      mtp.head = head(p);
    }
    if (c.drafter() == DrafterKind::dspark) inv.dspark = dspark();
    return inv;
  }
};

}  // namespace

Inventory model_inventory(const ModelConfig& c) {
  DSV4_CHECK(c.architecture == Architecture::v4);
  return Builder(c, nullptr).inventory();
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  if (c.architecture == Architecture::v41) {
    v41_inventory(c, &out);
  } else {
    Builder(c, &out).inventory();
  }
  return out;
}

TensorSpec stored_form(const TensorSpec& t) {
  if (t.dtype != DType::fp4_e2m1) return t;
  DSV4_CHECK(!t.shape.empty() && t.shape.back() % 2 == 0);
  TensorSpec s = t;
  s.dtype = DType::i8;
  s.shape.back() /= 2;   // a byte holds two adjacent columns of a row (spec §3.2)
  return s;
}

}  // namespace dsv4::io

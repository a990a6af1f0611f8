#include "io/inventory_v41.h"

#include "io/tensor_builder.h"

namespace dsv4::io {

namespace {

struct V41Builder : TensorBuilder {
  const ModelConfig& c;
  const V41Config& v;
  V41Builder(const ModelConfig& cfg, std::vector<TensorSpec>* out)
      : TensorBuilder{out, cfg.v41.fp8_block}, c(cfg), v(cfg.v41) {}

  // An FP8 table whose rows are read one by one: E8M0 scale per 32 elements of a row (v4.1 §3.2).
  MatrixSpec fp8_rows(const std::string& name, int64_t rows, int64_t cols) {
    MatrixSpec m;
    m.weight = add(name + ".weight", DType::fp8_e4m3, {rows, cols});
    m.scale = add(name + ".scale", DType::fp8_e8m0, {rows, cols / 32});
    return m;
  }

  // v4.1 §3.4 "Engram layers add".
  EngramSpec engram(const std::string& p, int64_t k) {
    const V41EngramConfig& e = v.engram;
    EngramSpec s;
    s.embed = fp8_rows(p + "embed", e.num_embeddings[size_t(k)], e.head_dim);
    // v4.1 §5.3.4: one key per stream plus one shared value, from the concatenated row lookups.
    s.wkv = fp8(p + "wkv", (c.hc_mult + 1) * c.hidden_size, e.columns() * e.head_dim);
    s.q_weight = add(p + "q_weight", DType::bf16, {c.hc_mult, c.hidden_size});
    s.k_weight = add(p + "k_weight", DType::bf16, {c.hc_mult, c.hidden_size});
    return s;
  }

  // v4.1 §3.4: the tables by role (KV source, index source), from the schedule.
  V41AttentionSpec attention(const std::string& a, const V41Layer& r) {
    const int64_t D = c.hidden_size, H = c.num_attention_heads, Dh = c.head_dim;
    V41AttentionSpec at;
    at.wq_a = fp8(a + "wq_a", c.q_lora_rank, D);
    at.q_norm = add(a + "q_norm.weight", DType::bf16, {c.q_lora_rank});
    at.wq_b = fp8(a + "wq_b", H * Dh, c.q_lora_rank);
    at.wkv = fp8(a + "wkv", Dh, D);
    at.kv_norm = add(a + "kv_norm.weight", DType::bf16, {Dh});
    at.wo_a = fp8(a + "wo_a", c.o_groups * c.o_lora_rank, H * Dh / c.o_groups);
    at.wo_b = fp8(a + "wo_b", D, c.o_groups * c.o_lora_rank);
    at.attn_sink = add(a + "attn_sink", DType::f32, {H});
    if (r.kv_source) {
      // v4.1 §5.6: ratio 1 is a plain projection; only ratio 2 pools with a gate.
      V41CompressorSpec& cs = at.compressor.emplace();
      cs.wkv = bf16(a + "compressor.wkv", Dh, D);
      if (r.ratio == 2) cs.wgate = bf16(a + "compressor.wgate", Dh, D);
      cs.norm = add(a + "compressor.norm.weight", DType::bf16, {Dh});
    }
    if (r.index_source) {
      const std::string ip = a + "indexer.";
      V41IndexerSpec& ix = at.indexer.emplace();
      if (r.kv_source) {   // the index-key owner (derive_schedule: every KV source indexes)
        V41IndexKeySpec& keys = ix.keys.emplace();
        keys.wk = bf16(ip + "wk", c.index_head_dim, Dh);
        keys.k_norm = add(ip + "k_norm.weight", DType::bf16, {c.index_head_dim});
      }
      ix.wq_b = fp8(ip + "wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank);
      ix.weights_proj = bf16(ip + "weights_proj", c.index_n_heads, D);
    }
    return at;
  }

  // v4.1 §3.4 (backbone) and §3.5 (a DSpark stage: the same set with its own expert count).
  V41BlockSpec block(int64_t layer) {
    const V41Layer& r = v.layers[size_t(layer)];
    const std::string p = block_prefix(c, layer);
    const int64_t D = c.hidden_size, n = c.hc_mult;
    V41BlockSpec b;
    b.layer = layer;
    if (r.engram >= 0) b.engram = engram(p + "engram.", r.engram);
    b.hc_attn = hc(p + "hc_attn", (2 + n) * n, 3, n * D);
    b.hc_ffn = hc(p + "hc_ffn", (2 + n) * n, 3, n * D);
    b.attn_norm = add(p + "attn_norm.weight", DType::bf16, {D});
    b.ffn_norm = add(p + "ffn_norm.weight", DType::bf16, {D});
    b.attn = attention(p + "attn.", r);

    const std::string f = p + "ffn.";
    V41MoeSpec& m = b.ffn;
    m.gate = bf16(f + "gate", r.n_experts, D);
    m.bias = add(f + "gate.bias", DType::f32, {r.n_experts});
    // v4.1 §2.1: present with the vision tower, in every gate, DSpark stages included (§7.3).
    m.bias_vl = add(f + "gate.bias_vl", DType::f32, {r.n_experts});
    m.shared = expert(f + "shared_experts.", D, c.moe_intermediate_size, false);
    for (int64_t e = 0; e < r.n_experts; ++e)
      m.experts.push_back(expert(f + "experts." + std::to_string(e) + ".", D, c.moe_intermediate_size, true));
    return b;
  }

  // v4.1 §3.3 and §12 (shapes), names of REF41-VIS `ViT`, `Aligner`.
  VisionSpec vision() {
    const V41VisionConfig& vc = v.vision;
    const int64_t D = c.hidden_size, Dv = vc.hidden_size, Iv = vc.intermediate_size;
    const int64_t r2 = vc.downsample_ratio * vc.downsample_ratio;
    VisionSpec s;
    s.image_start = add("image_start", DType::bf16, {D});
    s.image_end = add("image_end", DType::bf16, {D});
    s.image_newline = add("image_newline", DType::bf16, {D});
    s.aligner_w1 = bf16("aligner.w1", D, Dv * r2);
    s.aligner_w1_bias = add("aligner.w1.bias", DType::bf16, {D});
    s.aligner_w2 = bf16("aligner.w2", D, D);
    s.aligner_w2_bias = add("aligner.w2.bias", DType::bf16, {D});
    s.patch_embed = bf16("vision.patch_embed.proj", Dv, 3 * vc.patch_size * vc.patch_size);
    s.patch_embed_bias = add("vision.patch_embed.proj.bias", DType::bf16, {Dv});
    for (int64_t i = 0; i < vc.num_hidden_layers; ++i) {
      const std::string p = "vision.blocks." + std::to_string(i) + ".";
      VisionBlockSpec& b = s.blocks.emplace_back();
      b.norm1 = add(p + "norm1.weight", DType::bf16, {Dv});
      b.wqkv = bf16(p + "attn.wqkv", 3 * Dv, Dv);
      b.wqkv_bias = add(p + "attn.wqkv.bias", DType::bf16, {3 * Dv});
      b.wo = bf16(p + "attn.wo", Dv, Dv);
      b.wo_bias = add(p + "attn.wo.bias", DType::bf16, {Dv});
      b.norm2 = add(p + "norm2.weight", DType::bf16, {Dv});
      b.w1 = bf16(p + "mlp.w1", 2 * Iv, Dv);
      b.w2 = bf16(p + "mlp.w2", Dv, Iv);
    }
    s.norm = add("vision.norm.weight", DType::bf16, {Dv});
    return s;
  }

  // v4.1 §3.5, stage by stage; embed and head are the target's (v4.1 §7.4).
  V41DsparkSpec dspark() {
    const int64_t D = c.hidden_size, V = c.vocab_size, rank = c.dspark.markov_rank, ns = c.drafter_blocks();
    const int64_t taps = int64_t(c.dspark.target_layer_ids.size());
    V41DsparkSpec d;
    for (int64_t s = 0; s < ns; ++s) {
      const int64_t layer = c.num_hidden_layers + s;
      const std::string p = block_prefix(c, layer);
      d.stages.push_back(block(layer));
      if (s == 0) {
        d.main_proj = fp8(p + "main_proj", D, taps * D);   // the taps, concatenated (v4.1 §7.2)
        d.main_norm = add(p + "main_norm.weight", DType::bf16, {D});
      }
      if (s == ns - 1) {
        d.norm = add(p + "norm.weight", DType::bf16, {D});
        d.markov_embed = bf16(p + "markov_head.embed", V, rank);
        d.markov_head = bf16(p + "markov_head.head", V, rank);
        d.confidence_proj = bf16(p + "confidence_head.proj", 1, D + rank);
      }
    }
    return d;
  }

  V41Inventory inventory() {
    V41Inventory inv;
    inv.embed = add("embed.weight", DType::bf16, {c.vocab_size, c.hidden_size});
    inv.head = bf16("head", c.vocab_size, c.hidden_size);
    inv.norm = add("norm.weight", DType::bf16, {c.hidden_size});   // no hc_head (v4.1 §3.3)
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) inv.blocks.push_back(block(l));
    inv.vision = vision();
    inv.dspark = dspark();
    return inv;
  }
};

}  // namespace

V41Inventory v41_inventory(const ModelConfig& c, std::vector<TensorSpec>* flat) {
  DSV4_CHECK(c.architecture == Architecture::v41);
  return V41Builder(c, flat).inventory();
}

}  // namespace dsv4::io

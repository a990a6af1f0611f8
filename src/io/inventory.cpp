#include "io/inventory.h"

namespace dsv4::io {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Builder {
  std::vector<TensorSpec>& out;
  void add(const std::string& name, DType t, std::vector<int64_t> shape) { out.push_back({name, t, std::move(shape)}); }
  // FP8 E4M3 matrix [rows, cols] + E8M0 128x128 block scale (spec §3.2).
  void fp8(const std::string& name, int64_t rows, int64_t cols) {
    add(name + ".weight", DType::fp8_e4m3, {rows, cols});
    add(name + ".scale", DType::fp8_e8m0, {ceil_div(rows, 128), ceil_div(cols, 128)});
  }
  // FP4 E2M1 packed two per I8 byte [rows, cols/2] + E8M0 scale per row per 32 columns.
  void fp4(const std::string& name, int64_t rows, int64_t cols) {
    add(name + ".weight", DType::i8, {rows, cols / 2});
    add(name + ".scale", DType::fp8_e8m0, {rows, cols / 32});
  }
};

void add_block(const ModelConfig& c, int64_t layer, Builder& b) {
  const std::string p = block_prefix(c, layer);
  const int64_t D = c.hidden_size, H = c.num_attention_heads, Dh = c.head_dim, n = c.hc_mult;
  const int64_t mix = (2 + n) * n;
  for (const char* part : {"attn", "ffn"}) {
    b.add(p + "hc_" + part + "_fn", DType::f32, {mix, n * D});
    b.add(p + "hc_" + part + "_base", DType::f32, {mix});
    b.add(p + "hc_" + part + "_scale", DType::f32, {3});
  }
  b.add(p + "attn_norm.weight", DType::bf16, {D});
  b.add(p + "ffn_norm.weight", DType::bf16, {D});

  const std::string a = p + "attn.";
  b.fp8(a + "wq_a", c.q_lora_rank, D);
  b.add(a + "q_norm.weight", DType::bf16, {c.q_lora_rank});
  b.fp8(a + "wq_b", H * Dh, c.q_lora_rank);
  b.fp8(a + "wkv", Dh, D);
  b.add(a + "kv_norm.weight", DType::bf16, {Dh});
  b.fp8(a + "wo_a", c.o_groups * c.o_lora_rank, H * Dh / c.o_groups);
  b.fp8(a + "wo_b", D, c.o_groups * c.o_lora_rank);
  b.add(a + "attn_sink", DType::f32, {H});

  const LayerKind kind = c.layer_kind(layer);
  const int m = c.ratio(layer);
  if (kind != LayerKind::swa) {
    const int64_t cw = (kind == LayerKind::csa ? 2 : 1);   // CSA's compressor overlaps windows (§5.5)
    const std::string cp = a + "compressor.";
    b.add(cp + "wkv.weight", DType::bf16, {cw * Dh, D});
    b.add(cp + "wgate.weight", DType::bf16, {cw * Dh, D});
    b.add(cp + "ape", DType::f32, {m, cw * Dh});
    b.add(cp + "norm.weight", DType::bf16, {Dh});
  }
  if (kind == LayerKind::csa) {
    const std::string ip = a + "indexer.";
    const int64_t Di = c.index_head_dim;
    b.fp8(ip + "wq_b", c.index_n_heads * Di, c.q_lora_rank);
    b.add(ip + "weights_proj.weight", DType::bf16, {c.index_n_heads, D});
    b.add(ip + "compressor.wkv.weight", DType::bf16, {2 * Di, D});
    b.add(ip + "compressor.wgate.weight", DType::bf16, {2 * Di, D});
    b.add(ip + "compressor.ape", DType::f32, {m, 2 * Di});
    b.add(ip + "compressor.norm.weight", DType::bf16, {Di});
  }

  const std::string f = p + "ffn.";
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size;
  b.add(f + "gate.weight", DType::bf16, {E, D});
  const bool is_mtp = layer >= c.num_hidden_layers;
  if (!is_mtp && layer < c.num_hash_layers) b.add(f + "gate.tid2eid", DType::i64, {c.vocab_size, c.num_experts_per_tok});
  else b.add(f + "gate.bias", DType::f32, {E});
  b.fp8(f + "shared_experts.w1", I, D);
  b.fp8(f + "shared_experts.w2", D, I);
  b.fp8(f + "shared_experts.w3", I, D);
  for (int64_t e = 0; e < E; ++e) {
    const std::string ep = f + "experts." + std::to_string(e) + ".";
    if (c.experts_fp4) {
      b.fp4(ep + "w1", I, D);
      b.fp4(ep + "w2", D, I);
      b.fp4(ep + "w3", I, D);
    } else {
      b.fp8(ep + "w1", I, D);
      b.fp8(ep + "w2", D, I);
      b.fp8(ep + "w3", I, D);
    }
  }
}

}  // namespace

std::string block_prefix(const ModelConfig& c, int64_t layer) {
  if (layer >= c.num_hidden_layers) return "mtp." + std::to_string(layer - c.num_hidden_layers) + ".";
  return "layers." + std::to_string(layer) + ".";
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  Builder b{out};
  const int64_t D = c.hidden_size, n = c.hc_mult;
  b.add("embed.weight", DType::bf16, {c.vocab_size, D});
  b.add("head.weight", DType::bf16, {c.vocab_size, D});
  b.add("norm.weight", DType::bf16, {D});
  b.add("hc_head_fn", DType::f32, {n, n * D});
  b.add("hc_head_base", DType::f32, {n});
  b.add("hc_head_scale", DType::f32, {1});
  for (int64_t l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers; ++l) add_block(c, l, b);
  if (c.num_nextn_predict_layers > 0) {
    const std::string p = block_prefix(c, c.num_hidden_layers);
    b.fp8(p + "e_proj", D, D);
    b.fp8(p + "h_proj", D, D);
    b.add(p + "enorm.weight", DType::bf16, {D});
    b.add(p + "hnorm.weight", DType::bf16, {D});
    b.add(p + "norm.weight", DType::bf16, {D});
    b.add(p + "hc_head_fn", DType::f32, {n, n * D});
    b.add(p + "hc_head_base", DType::f32, {n});
    b.add(p + "hc_head_scale", DType::f32, {1});
  }
  return out;
}

}  // namespace dsv4::io

#include "model/weights.h"

#include "core/dtype.h"
#include "io/inventory.h"

namespace dsv4::model {

namespace {

struct Binder {
  const io::Checkpoint& ck;

  const io::TensorEntry& t(const std::string& name) const { return ck.tensor(name); }

  // A matrix with an optional ".scale" companion (FP8 / FP4 storage).
  WeightView matrix(const std::string& base) const {
    const io::TensorEntry& w = t(base + ".weight");
    WeightView v;
    v.dtype = w.dtype;
    v.rows = w.shape[0];
    v.cols = w.dtype == DType::i8 ? w.shape[1] * 2 : w.shape[1];   // FP4: two values per byte
    v.data = w.data;
    if (const io::TensorEntry* s = ck.find(base + ".scale")) v.scale = s->data;
    return v;
  }
  const float* f32(const std::string& name) const { return reinterpret_cast<const float*>(t(name).data); }
  // Small bf16 vectors (norm weights) are upcast once: the reference holds them in f32 (§3.6).
  std::vector<float> bf16_vec(const std::string& name) const {
    const io::TensorEntry& e = t(name);
    std::vector<float> out(size_t(e.numel()));
    const uint16_t* p = reinterpret_cast<const uint16_t*>(e.data);
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(p[i]);
    return out;
  }
  HcWeights hc(const std::string& prefix) const {
    HcWeights h;
    h.fn = f32(prefix + "_fn");
    h.base = f32(prefix + "_base");
    h.scale = f32(prefix + "_scale");
    h.mix = t(prefix + "_fn").shape[0];
    return h;
  }
  CompressorWeights compressor(const std::string& p, int64_t ratio, int64_t dim, bool overlap) const {
    CompressorWeights c;
    c.wkv = matrix(p + "wkv");
    c.wgate = matrix(p + "wgate");
    c.ape = f32(p + "ape");
    c.norm = bf16_vec(p + "norm.weight");
    c.ratio = ratio;
    c.dim = dim;
    c.width = c.wkv.rows;
    c.overlap = overlap;
    return c;
  }

  BlockWeights block(int64_t layer) const {
    const io::ModelConfig& cfg = ck.config();
    const std::string p = io::block_prefix(cfg, layer);
    BlockWeights b;
    b.layer = layer;
    b.kind = cfg.layer_kind(layer);
    b.hash_routed = layer < cfg.num_hidden_layers && layer < cfg.num_hash_layers;
    b.hc_attn = hc(p + "hc_attn");
    b.hc_ffn = hc(p + "hc_ffn");
    b.attn_norm = bf16_vec(p + "attn_norm.weight");
    b.ffn_norm = bf16_vec(p + "ffn_norm.weight");

    const std::string a = p + "attn.";
    AttentionWeights& at = b.attn;
    at.wq_a = matrix(a + "wq_a");
    at.wq_b = matrix(a + "wq_b");
    at.wkv = matrix(a + "wkv");
    at.wo_a = matrix(a + "wo_a");
    at.wo_b = matrix(a + "wo_b");
    at.q_norm = bf16_vec(a + "q_norm.weight");
    at.kv_norm = bf16_vec(a + "kv_norm.weight");
    at.attn_sink = f32(a + "attn_sink");
    // spec §5.5, §5.6: CSA's compressors (main and indexer) overlap windows, HCA's does not.
    const bool csa = b.kind == io::LayerKind::csa;
    if (b.kind != io::LayerKind::swa)
      at.compressor = compressor(a + "compressor.", cfg.ratio(layer), cfg.head_dim, csa);
    if (csa) {
      at.indexer.wq_b = matrix(a + "indexer.wq_b");
      at.indexer.weights_proj = matrix(a + "indexer.weights_proj");
      at.indexer.compressor = compressor(a + "indexer.compressor.", cfg.ratio(layer), cfg.index_head_dim, true);
    }

    const std::string f = p + "ffn.";
    MoeWeights& m = b.ffn;
    m.gate_view = matrix(f + "gate");
    m.gate = reinterpret_cast<const uint16_t*>(m.gate_view.data);
    if (b.hash_routed) m.tid2eid = reinterpret_cast<const int64_t*>(t(f + "gate.tid2eid").data);
    else m.bias = f32(f + "gate.bias");
    m.shared = {matrix(f + "shared_experts.w1"), matrix(f + "shared_experts.w2"), matrix(f + "shared_experts.w3")};
    for (int64_t e = 0; e < cfg.n_routed_experts; ++e) {
      const std::string ep = f + "experts." + std::to_string(e) + ".";
      m.experts.push_back({matrix(ep + "w1"), matrix(ep + "w2"), matrix(ep + "w3")});
    }
    return b;
  }
};

}  // namespace

ModelWeights bind_weights(const io::Checkpoint& ck) {
  const io::ModelConfig& cfg = ck.config();
  Binder b{ck};
  ModelWeights w;
  w.embed = reinterpret_cast<const uint16_t*>(b.t("embed.weight").data);
  w.head = b.matrix("head");
  w.final_head.hc = b.hc("hc_head");
  w.final_head.norm = b.bf16_vec("norm.weight");
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) w.blocks.push_back(b.block(l));
  w.has_mtp = cfg.num_nextn_predict_layers > 0;
  if (w.has_mtp) {
    const int64_t L = cfg.num_hidden_layers;
    const std::string p = io::block_prefix(cfg, L);
    w.mtp.e_proj = b.matrix(p + "e_proj");
    w.mtp.h_proj = b.matrix(p + "h_proj");
    w.mtp.enorm = b.bf16_vec(p + "enorm.weight");
    w.mtp.hnorm = b.bf16_vec(p + "hnorm.weight");
    w.mtp.block = b.block(L);
    w.mtp.head.hc = b.hc(p + "hc_head");
    w.mtp.head.norm = b.bf16_vec(p + "norm.weight");
  }
  return w;
}

}  // namespace dsv4::model

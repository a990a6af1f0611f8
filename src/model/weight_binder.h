// Internal to model/: binds typed inventory fields (io/inventory.h, io/inventory_v41.h) to the
// checkpoint's tensors, for weights.cpp (V4) and weights_v41.cpp (V4.1). The names come from the
// inventory, never from a list of its own.
#pragma once

#include <vector>

#include "core/dtype.h"
#include "io/checkpoint.h"
#include "io/inventory.h"
#include "model/weights.h"

namespace dsv4::model {

struct WeightBinder {
  const io::Checkpoint& ck;
  int64_t fp8_block = 128;   // FP8 scale block of the architecture (spec §3.2; v4.1 §3.2: 32)
  int act_block = 128;       // its GEMMs' activation quantisation block (spec §4.2; v4.1 §4.2: 32)

  const io::TensorEntry& t(const io::TensorSpec& s) const { return ck.tensor(s.name); }

  // A matrix with its scale, if stored with one (FP8 / FP4). Checkpoint entries carry element
  // shapes, so an FP4 matrix is [rows, cols] though it is stored as I8 [rows, cols/2].
  WeightView matrix(const io::MatrixSpec& s) const {
    const io::TensorEntry& w = t(s.weight);
    WeightView v;
    v.dtype = w.dtype;
    v.rows = w.shape[0];
    v.cols = w.shape[1];
    v.data = w.data;
    if (s.scale) v.scale = t(*s.scale).data;
    v.block = fp8_block;
    v.act_block = act_block;
    return v;
  }
  const float* f32(const io::TensorSpec& s) const { return reinterpret_cast<const float*>(t(s).data); }
  // Small bf16 vectors (norm weights) are upcast once: the reference holds them in f32 (§3.6).
  std::vector<float> bf16_vec(const io::TensorSpec& s) const {
    const io::TensorEntry& e = t(s);
    std::vector<float> out(size_t(e.numel()));
    const uint16_t* p = reinterpret_cast<const uint16_t*>(e.data);
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(p[i]);
    return out;
  }
  HcWeights hc(const io::HcSpec& s) const { return {f32(s.fn), f32(s.base), f32(s.scale), s.fn.shape[0]}; }
  CompressorWeights compressor(const io::CompressorSpec& s) const {
    CompressorWeights c;
    c.wkv = matrix(s.wkv);
    c.wgate = matrix(s.wgate);
    c.ape = f32(s.ape);
    c.norm = bf16_vec(s.norm);
    c.ratio = s.ratio;
    c.dim = s.dim;
    c.width = c.wkv.rows;
    c.overlap = s.overlap;
    return c;
  }
  ExpertWeights expert(const io::ExpertSpec& s) const { return {matrix(s.w1), matrix(s.w2), matrix(s.w3)}; }
  // A routed expert in a shard this process did not map (another process's, model/expert_split.h)
  // stays empty: it is never computed here.
  ExpertWeights routed_expert(const io::ExpertSpec& s) const {
    for (const io::MatrixSpec* m : {&s.w1, &s.w2, &s.w3})
      if (ck.find(m->weight.name) == nullptr || (m->scale && ck.find(m->scale->name) == nullptr)) return {};
    return expert(s);
  }
  HeadWeights head(const io::HeadSpec& s) const { return {hc(s.hc), bf16_vec(s.norm)}; }

  // What a V4 and a V4.1 block hold alike (spec §3.4, v4.1 §3.4; io::BlockSpec and
  // io::V41BlockSpec): the hyper-connection sites, the norms, the attention projections and the
  // MoE's router and experts. The binders add their architecture's own parts. top_k: experts per
  // token (v4.1 §7.3: DSpark stages route over their own).
  template <typename BlockSpec>
  void common(const BlockSpec& s, int64_t top_k, BlockWeights& b) const {
    b.layer = s.layer;
    b.hc_attn = hc(s.hc_attn);
    b.hc_ffn = hc(s.hc_ffn);
    b.attn_norm = bf16_vec(s.attn_norm);
    b.ffn_norm = bf16_vec(s.ffn_norm);
    AttentionWeights& at = b.attn;
    at.wq_a = matrix(s.attn.wq_a);
    at.wq_b = matrix(s.attn.wq_b);
    at.wkv = matrix(s.attn.wkv);
    at.wo_a = matrix(s.attn.wo_a);
    at.wo_b = matrix(s.attn.wo_b);
    at.q_norm = bf16_vec(s.attn.q_norm);
    at.kv_norm = bf16_vec(s.attn.kv_norm);
    at.attn_sink = f32(s.attn.attn_sink);
    MoeWeights& m = b.ffn;
    m.n_experts = int64_t(s.ffn.experts.size());
    m.top_k = top_k;
    m.gate_view = matrix(s.ffn.gate);
    m.gate = reinterpret_cast<const uint16_t*>(m.gate_view.data);
    m.shared = expert(s.ffn.shared);
    m.experts.reserve(s.ffn.experts.size());
    for (const io::ExpertSpec& e : s.ffn.experts) m.experts.push_back(routed_expert(e));
  }
};

// V4.1's binding (weights_v41.cpp); bind_weights dispatches to it.
ModelWeights bind_weights_v41(const io::Checkpoint& ck);

}  // namespace dsv4::model

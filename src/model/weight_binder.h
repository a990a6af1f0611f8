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

};

// V4.1's binding (weights_v41.cpp); bind_weights dispatches to it.
ModelWeights bind_weights_v41(const io::Checkpoint& ck);

}  // namespace dsv4::model

#include "model/weights.h"

#include "io/inventory.h"
#include "model/weight_binder.h"

namespace dsv4::model {

namespace {

struct Binder : WeightBinder {
  BlockWeights block(const io::BlockSpec& s) const {
    BlockWeights b;
    b.layer = s.layer;
    b.kind = s.kind;
    b.hash_routed = s.ffn.tid2eid.has_value();
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
    if (s.attn.compressor) at.compressor = compressor(*s.attn.compressor);
    if (s.attn.indexer) {
      at.indexer.wq_b = matrix(s.attn.indexer->wq_b);
      at.indexer.weights_proj = matrix(s.attn.indexer->weights_proj);
      at.indexer.compressor = compressor(s.attn.indexer->compressor);
    }

    MoeWeights& m = b.ffn;
    m.gate_view = matrix(s.ffn.gate);
    m.gate = reinterpret_cast<const uint16_t*>(m.gate_view.data);
    if (s.ffn.tid2eid) m.tid2eid = reinterpret_cast<const int64_t*>(t(*s.ffn.tid2eid).data);
    if (s.ffn.bias) m.bias = f32(*s.ffn.bias);
    m.shared = expert(s.ffn.shared);
    m.experts.reserve(s.ffn.experts.size());
    for (const io::ExpertSpec& e : s.ffn.experts) m.experts.push_back(routed_expert(e));
    return b;
  }
};

}  // namespace

ModelWeights bind_weights(const io::Checkpoint& ck) {
  if (ck.config().architecture == io::Architecture::v41) return bind_weights_v41(ck);
  const io::Inventory inv = io::model_inventory(ck.config());
  const Binder b{{ck}};
  ModelWeights w;
  w.embed = reinterpret_cast<const uint16_t*>(b.t(inv.embed).data);
  w.head = b.matrix(inv.head);
  w.final_head = b.head(inv.final_head);
  for (const io::BlockSpec& s : inv.blocks) w.blocks.push_back(b.block(s));
  w.has_mtp = inv.mtp.has_value();
  if (inv.mtp) {
    w.mtp.e_proj = b.matrix(inv.mtp->e_proj);
    w.mtp.h_proj = b.matrix(inv.mtp->h_proj);
    w.mtp.enorm = b.bf16_vec(inv.mtp->enorm);
    w.mtp.hnorm = b.bf16_vec(inv.mtp->hnorm);
    w.mtp.block = b.block(inv.mtp->block);
    w.mtp.head = b.head(inv.mtp->head);
  }
  w.has_dspark = inv.dspark.has_value();
  if (inv.dspark) {
    DsparkWeights& d = w.dspark;
    d.main_proj = b.matrix(inv.dspark->main_proj);
    d.main_norm = b.bf16_vec(inv.dspark->main_norm);
    for (const io::BlockSpec& s : inv.dspark->stages) d.stages.push_back(b.block(s));
    d.head = b.head(inv.dspark->head);
    d.markov_w1 = b.matrix(inv.dspark->markov_w1);
    d.markov_w2 = b.matrix(inv.dspark->markov_w2);
    d.confidence_proj = b.bf16_vec(inv.dspark->confidence_proj.weight);
  }
  return w;
}

}  // namespace dsv4::model

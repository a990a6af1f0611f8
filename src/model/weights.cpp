#include "model/weights.h"

#include "io/inventory.h"
#include "model/weight_binder.h"

namespace dsv4::model {

namespace {

struct Binder : WeightBinder {
  BlockWeights block(const io::BlockSpec& s) const {
    BlockWeights b;
    common(s, ck.config().num_experts_per_tok, b);
    b.kind = s.kind;
    b.hash_routed = s.ffn.tid2eid.has_value();
    AttentionWeights& at = b.attn;
    if (s.attn.compressor) at.compressor = compressor(*s.attn.compressor);
    if (s.attn.indexer) {
      at.indexer.wq_b = matrix(s.attn.indexer->wq_b);
      at.indexer.weights_proj = matrix(s.attn.indexer->weights_proj);
      at.indexer.compressor = compressor(s.attn.indexer->compressor);
    }
    if (s.ffn.tid2eid) b.ffn.tid2eid = reinterpret_cast<const int64_t*>(t(*s.ffn.tid2eid).data);
    if (s.ffn.bias) b.ffn.bias = f32(*s.ffn.bias);
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

// Binding of a DeepSeek-V4.1 checkpoint (v4.1 §3) into the weight views the forward reads, by the
// fields of the V4.1 inventory (io/inventory_v41.h). The vision tower is validated by the loader
// but not bound (nothing runs it). The DSpark stages ("mtp.*") make the drafter (model/dspark.h).
#include "io/inventory_v41.h"
#include "model/weight_binder.h"

namespace dsv4::model {

namespace {

struct V41Binder : WeightBinder {
  const io::ModelConfig& c;

  EngramWeights engram(const io::EngramSpec& s, int64_t index) const {
    EngramWeights e;
    e.table = t(s.embed.weight).data;
    e.table_scale = t(*s.embed.scale).data;
    e.rows = s.embed.weight.shape[0];
    e.wkv = matrix(s.wkv);
    // v4.1 §5.3.4: only the product of the two gate vectors is ever used.
    const std::vector<float> q = bf16_vec(s.q_weight), k = bf16_vec(s.k_weight);
    e.gate.resize(q.size());
    for (size_t i = 0; i < q.size(); ++i) e.gate[i] = q[i] * k[i];
    e.index = index;
    return e;
  }

  BlockWeights block(const io::V41BlockSpec& s) const {
    BlockWeights b;
    b.v41 = c.v41.layers[size_t(s.layer)];
    common(s, b.v41.experts_per_tok, b);   // v4.1 §7.3: a DSpark stage's own 128 experts, top-3
    if (s.engram) {
      b.has_engram = true;
      b.engram = engram(*s.engram, b.v41.engram);
    }
    AttentionWeights& at = b.attn;
    if (s.attn.compressor) {   // v4.1 §5.6: no ape, no overlap; ratio 1 has no gate
      CompressorWeights& cw = at.compressor;
      cw.wkv = matrix(s.attn.compressor->wkv);
      if (s.attn.compressor->wgate) cw.wgate = matrix(*s.attn.compressor->wgate);
      cw.norm = bf16_vec(s.attn.compressor->norm);
      cw.ratio = b.v41.ratio;
      cw.dim = cw.wkv.rows;
      cw.width = cw.wkv.rows;
    }
    if (s.attn.indexer) {
      IndexerWeights& ix = at.indexer;
      ix.wq_b = matrix(s.attn.indexer->wq_b);
      ix.weights_proj = matrix(s.attn.indexer->weights_proj);
      if (s.attn.indexer->keys) {
        ix.wk = matrix(s.attn.indexer->keys->wk);
        ix.k_norm = bf16_vec(s.attn.indexer->keys->k_norm);
      }
    }
    // Text positions only: bias_vl is for image-span tokens (v4.1 §5.12), which the text forward
    // does not take; the DSpark stages never use it (v4.1 §7.3).
    b.ffn.bias = f32(s.ffn.bias);
    b.ffn.route_norm_eps = 1e-20f;
    return b;
  }

  // v4.1 §3.5, §7: the stages as V4.1 blocks, main_proj/main_norm of stage 0, and the last
  // stage's norm, Markov head and confidence head. No hc_head: the draft collapses with the last
  // stage's lagged pre (v4.1 §7.4), like the target (§5.13). The Markov tensors keep V4's roles
  // under their V4.1 names (embed = markov_w1, head = markov_w2; v4.1 §3.5).
  DsparkWeights dspark(const io::V41DsparkSpec& s) const {
    DsparkWeights d;
    d.main_proj = matrix(s.main_proj);
    d.main_norm = bf16_vec(s.main_norm);
    for (const io::V41BlockSpec& st : s.stages) d.stages.push_back(block(st));
    d.head.norm = bf16_vec(s.norm);
    d.head.lagged_pre = true;
    d.markov_w1 = matrix(s.markov_embed);
    d.markov_w2 = matrix(s.markov_head);
    d.confidence_proj = bf16_vec(s.confidence_proj.weight);
    return d;
  }
};

}  // namespace

ModelWeights bind_weights_v41(const io::Checkpoint& ck) {
  const io::ModelConfig& c = ck.config();
  const io::V41Inventory inv = io::v41_inventory(c);
  const V41Binder b{{ck, c.v41.fp8_block, int(c.v41.fp8_block)}, c};
  ModelWeights w;
  w.embed = reinterpret_cast<const uint16_t*>(b.t(inv.embed).data);
  w.head = b.matrix(inv.head);
  w.final_head.norm = b.bf16_vec(inv.norm);
  w.final_head.lagged_pre = true;   // no hc_head (v4.1 §3.3, §5.13)
  for (const io::V41BlockSpec& s : inv.blocks) w.blocks.push_back(b.block(s));
  w.has_dspark = !inv.dspark.stages.empty();
  if (w.has_dspark) w.dspark = b.dspark(inv.dspark);
  return w;
}

}  // namespace dsv4::model

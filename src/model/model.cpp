#include "model/model.h"

namespace dsv4::model {

Result<std::unique_ptr<Model>> load_model(const std::string& dir, const io::TensorFilter& wanted,
                                          const io::NodeCopy& node_copy) {
  auto m = std::make_unique<Model>();
  DSV4_ASSIGN_OR_RETURN(m->checkpoint, io::Checkpoint::open(dir, wanted));
  if (node_copy.node >= 0) DSV4_TRY(m->checkpoint->copy_to_node(node_copy).status());
  m->cfg = m->checkpoint->config();
  // V4.1 (v4.1 §5.3.1): the Engram token map ships beside the checkpoint.
  if (m->cfg.architecture == io::Architecture::v41) {
    DSV4_ASSIGN_OR_RETURN(m->engram, load_engram_hasher(dir, m->cfg));
  }
  m->w = bind_weights(*m->checkpoint);
  const io::ModelConfig& c = m->cfg;
  m->rope_plain = kernels::make_rope_freqs(c.qk_rope_head_dim, c.rope_theta, false, 1.0, c.rope_original_max_pos,
                                           c.beta_fast, c.beta_slow);
  m->rope_yarn = kernels::make_rope_freqs(c.qk_rope_head_dim, c.compress_rope_theta, true, c.rope_factor,
                                          c.rope_original_max_pos, c.beta_fast, c.beta_slow);
  return m;
}

Result<uint64_t> populate_weights(const Model& m, bool reread_small_pages) {
  // A node copy (copy_to_node): the shards hold only the tensors left in the mapping; populating
  // them whole would map the copied bytes a second time.
  if (m.checkpoint->node_copy_bytes() > 0 && m.cfg.architecture != io::Architecture::v41)
    return m.checkpoint->populate_tensors([](const std::string&) { return true; });
  if (m.cfg.architecture != io::Architecture::v41) return m.checkpoint->populate(reread_small_pages);
  // v4.1 §3.3-§3.5: the globals the text forward reads, the backbone layers (Engram tables out)
  // and the DSpark stages.
  return m.checkpoint->populate_tensors([](const std::string& name) {
    if (name == "embed.weight" || name == "head.weight" || name == "norm.weight") return true;
    if (name.rfind("mtp.", 0) == 0) return true;
    return name.rfind("layers.", 0) == 0 && name.find(".engram.embed.") == std::string::npos;
  });
}

}  // namespace dsv4::model

#include "model/model.h"

namespace dsv4::model {

Result<std::unique_ptr<Model>> load_model(const std::string& dir, const io::TensorFilter& wanted) {
  auto m = std::make_unique<Model>();
  DSV4_ASSIGN_OR_RETURN(m->checkpoint, io::Checkpoint::open(dir, wanted));
  // The checkpoint is validated first, so a broken V4.1 checkpoint reports its defect; a sound
  // one is refused here, the one place every command that computes with a model goes through.
  if (m->checkpoint->config().architecture == io::Architecture::v41)
    return Status::unsupported("a valid DeepSeek-V4.1-Flash checkpoint, but the V4.1 forward pass is not "
                               "implemented yet (issue #20): it cannot be run, served, scored or benchmarked; "
                               "`dsv4 inspect` and `dsv4 verify` work on it");
  m->cfg = m->checkpoint->config();
  m->w = bind_weights(*m->checkpoint);
  const io::ModelConfig& c = m->cfg;
  m->rope_plain = kernels::make_rope_freqs(c.qk_rope_head_dim, c.rope_theta, false, 1.0, c.rope_original_max_pos,
                                           c.beta_fast, c.beta_slow);
  m->rope_yarn = kernels::make_rope_freqs(c.qk_rope_head_dim, c.compress_rope_theta, true, c.rope_factor,
                                          c.rope_original_max_pos, c.beta_fast, c.beta_slow);
  return m;
}

}  // namespace dsv4::model

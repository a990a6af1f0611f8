#include "io/config.h"

#include <fstream>
#include <sstream>

#include "io/config_json.h"

namespace dsv4::io {

using nlohmann::json;

DrafterKind ModelConfig::drafter() const {
  if (revision == Revision::dspark) return DrafterKind::dspark;
  return num_nextn_predict_layers > 0 ? DrafterKind::mtp : DrafterKind::none;
}

int64_t ModelConfig::drafter_blocks() const {
  if (revision == Revision::dspark) return int64_t(compress_ratios.size()) - num_hidden_layers;
  return num_nextn_predict_layers;
}

// 0731 and 0813 have the same config keys; what tells them apart is the main stack they were
// released with (addendum §A1, §A7): Pro-0813 starts with two HCA layers (m = 128, spec
// Appendix A), Flash-0731 with two SWA layers. The first compress_ratios entry decides, so a
// synthetic checkpoint with fewer layers or other dimensions is named like its release. The
// Flash-DSpark intermediate has 0731's keys and schedule (addendum §A1) and is named 0731 too.
// V4.1 has one release so far, the Flash model of v4.1 §0.2.
std::string release_name(const ModelConfig& c) {
  if (c.architecture == Architecture::v41) return "V4.1-Flash";
  if (c.revision == Revision::preview) return "preview";
  return c.compress_ratios.front() == 128 ? "0813" : "0731";
}

std::string drafter_name(const ModelConfig& c) {
  switch (c.drafter()) {
    case DrafterKind::none: return "none";
    case DrafterKind::mtp: return "MTP-1";
    case DrafterKind::dspark: return "DSpark with " + std::to_string(c.drafter_blocks()) + " stages";
  }
  return "none";
}

std::string architecture_name(const ModelConfig& c) {
  return c.architecture == Architecture::v41 ? "DeepSeek-V4.1" : "DeepSeek-V4";
}

LayerKind ModelConfig::layer_kind(int64_t layer) const {
  DSV4_CHECK(architecture == Architecture::v4);
  const int m = ratio(layer);
  return m == 0 ? LayerKind::swa : (m == 4 ? LayerKind::csa : LayerKind::hca);
}

namespace {

// The flat V4 config (spec §2.1, addendum §A2.1).
Status parse_v4_config(const json& j, ModelConfig* c) {
  if (auto mt = j.find("model_type"); mt != j.end() && mt->is_string() && mt->get<std::string>() != "deepseek_v4")
    return Status::unsupported("model_type '" + mt->get<std::string>() + "' is not deepseek_v4");
  DSV4_TRY(read_shared_fields(j, /*all_required=*/false, c));
  DSV4_TRY(get_int(j, "num_hash_layers", &c->num_hash_layers));
  DSV4_TRY(get_int(j, "bos_token_id", &c->bos_token_id, false));
  DSV4_TRY(get_int(j, "eos_token_id", &c->eos_token_id, false));

  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key().rfind("dspark_", 0) == 0) c->revision = Revision::dspark;   // addendum §A6.5
  if (c->revision == Revision::dspark) DSV4_TRY(parse_dspark(j, &c->dspark));

  if (auto sf = j.find("scoring_func"); sf != j.end()) {
    if (!sf->is_string() || sf->get<std::string>() != "sqrtsoftplus")
      return Status::unsupported("scoring_func must be \"sqrtsoftplus\" (DeepSeek-V4)");
  }
  if (auto ed = j.find("expert_dtype"); ed != j.end() && !ed->is_null()) {
    if (!ed->is_string()) return Status::invalid_argument("key 'expert_dtype' must be a string");
    const std::string v = ed->get<std::string>();
    if (v == "fp4") c->experts_fp4 = true;
    else if (v == "fp8") c->experts_fp4 = false;
    else return Status::unsupported("expert_dtype '" + v + "' is not supported (fp4 or fp8)");
  }
  auto rs = j.find("rope_scaling");
  if (rs == j.end() || !rs->is_object()) return Status::invalid_argument("missing object 'rope_scaling'");
  if (auto t = rs->find("type"); t != rs->end() && (!t->is_string() || t->get<std::string>() != "yarn"))
    return Status::unsupported("rope_scaling.type must be \"yarn\"");
  DSV4_TRY(get_num(*rs, "factor", &c->rope_factor));
  DSV4_TRY(get_int(*rs, "original_max_position_embeddings", &c->rope_original_max_pos));
  DSV4_TRY(get_num(*rs, "beta_fast", &c->beta_fast, false));
  DSV4_TRY(get_num(*rs, "beta_slow", &c->beta_slow, false));

  DSV4_TRY(read_compress_ratios(j, {0, 4, 128}, "V4", c));

  DSV4_TRY(check_shared_fields(*c));
  if (c->num_hash_layers < 0 || c->num_hash_layers > c->num_hidden_layers)
    return Status::invalid_argument("num_hash_layers out of range");
  if (c->index_head_dim & (c->index_head_dim - 1))
    return Status::invalid_argument("index_head_dim must be a power of two (Hadamard rotation)");
  if (c->num_nextn_predict_layers < 0 || c->num_nextn_predict_layers > 1)
    return Status::unsupported("num_nextn_predict_layers must be 0 or 1");
  if (c->revision == Revision::dspark) {
    DSV4_TRY(check_dspark(*c));
  } else if (int64_t(c->compress_ratios.size()) != c->num_hidden_layers + c->num_nextn_predict_layers)
    return Status::invalid_argument("compress_ratios has " + std::to_string(c->compress_ratios.size()) +
                                    " entries, expected num_hidden_layers + num_nextn_predict_layers = " +
                                    std::to_string(c->num_hidden_layers + c->num_nextn_predict_layers));
  // Quantisation blocks (spec §3.2): FP8 weights use 128x128 blocks, FP4 experts 32-wide groups,
  // activations 128-wide blocks; KV FP8 simulation 64-wide blocks.
  for (auto [key, v] : {std::pair{"hidden_size", c->hidden_size}, {"q_lora_rank", c->q_lora_rank},
                        {"moe_intermediate_size", c->moe_intermediate_size}, {"o_lora_rank", c->o_lora_rank}}) {
    if (v % 128 != 0) return Status::unsupported(std::string(key) + " must be a multiple of 128 (FP8 block size)");
  }
  if (c->nope_head_dim() % 64 != 0) return Status::unsupported("head_dim - qk_rope_head_dim must be a multiple of 64");
  if (c->index_head_dim % 32 != 0) return Status::unsupported("index_head_dim must be a multiple of 32");
  if ((c->num_attention_heads / c->o_groups) * c->head_dim % 128 != 0)
    return Status::unsupported("heads per group x head_dim must be a multiple of 128");
  return Status::ok_status();
}

// V4.1's root config nests the text model (v4.1 §2.1); its model_type, released or pre-release
// (v4.1 §2.4), names it too. parse_v41_config refuses the pre-release spelling by name.
bool is_v41_config(const json& j) {
  if (j.contains("text_config")) return true;
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) return false;
  const std::string t = mt->get<std::string>();
  return t == "deepseek_v41" || t == "deepseek_v4.1";
}

}  // namespace

Result<ModelConfig> parse_config(const std::string& text, const std::string& name) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(name + ": not valid JSON");
  if (!j.is_object()) return Status::invalid_argument(name + ": config is not a JSON object");
  ModelConfig c;
  Status s = is_v41_config(j) ? parse_v41_config(j, &c) : parse_v4_config(j, &c);
  if (!s.ok()) return s.with_context(name);
  return c;
}

Result<ModelConfig> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace dsv4::io

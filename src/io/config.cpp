#include "io/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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
std::string release_name(const ModelConfig& c) {
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

LayerKind ModelConfig::layer_kind(int64_t layer) const {
  const int m = ratio(layer);
  return m == 0 ? LayerKind::swa : (m == 4 ? LayerKind::csa : LayerKind::hca);
}

namespace {

// Typed readers: a present key of the wrong type is an error; a missing required key too.
Status get_int(const json& j, const char* key, int64_t* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Status::invalid_argument(std::string("missing key '") + key + "'") : Status::ok_status();
  }
  if (!it->is_number_integer()) return Status::invalid_argument(std::string("key '") + key + "' must be an integer");
  *out = it->get<int64_t>();
  return Status::ok_status();
}

Status get_num(const json& j, const char* key, double* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Status::invalid_argument(std::string("missing key '") + key + "'") : Status::ok_status();
  }
  if (!it->is_number()) return Status::invalid_argument(std::string("key '") + key + "' must be a number");
  *out = it->get<double>();
  if (!std::isfinite(*out)) return Status::invalid_argument(std::string("key '") + key + "' must be finite");
  return Status::ok_status();
}

Status positive(const char* key, int64_t v, int64_t max = int64_t(1) << 40) {
  if (v <= 0 || v > max) return Status::invalid_argument(std::string("key '") + key + "' = " + std::to_string(v) + " is out of range");
  return Status::ok_status();
}

// The dspark_* keys (addendum §A2.1). All four are required once any is present.
Status parse_dspark(const json& j, ModelConfig* c) {
  DsparkConfig& d = c->dspark;
  DSV4_TRY(get_int(j, "dspark_block_size", &d.block_size));
  DSV4_TRY(get_int(j, "dspark_noise_token_id", &d.noise_token_id));
  DSV4_TRY(get_int(j, "dspark_markov_rank", &d.markov_rank));
  auto t = j.find("dspark_target_layer_ids");
  if (t == j.end() || !t->is_array() || t->empty())
    return Status::invalid_argument("key 'dspark_target_layer_ids' must be a non-empty array of layer ids");
  for (const auto& v : *t) {
    if (!v.is_number_integer()) return Status::invalid_argument("key 'dspark_target_layer_ids' entries must be integers");
    d.target_layer_ids.push_back(v.get<int64_t>());
  }
  return Status::ok_status();
}

// Checks the DSpark keys against the main stack; needs num_hidden_layers, vocab_size and
// compress_ratios parsed.
Status check_dspark(const ModelConfig& c) {
  const DsparkConfig& d = c.dspark;
  const int64_t L = c.num_hidden_layers;
  DSV4_TRY(positive("dspark_block_size", d.block_size, 1024));
  DSV4_TRY(positive("dspark_markov_rank", d.markov_rank, 1 << 16));
  if (d.noise_token_id < 0 || d.noise_token_id >= c.vocab_size)
    return Status::invalid_argument("key 'dspark_noise_token_id' = " + std::to_string(d.noise_token_id) +
                                    " is not a token id (vocab_size " + std::to_string(c.vocab_size) + ")");
  // The addendum does not say whether T must be sorted (the released lists are). The reference
  // appends a tap when the target loop passes a layer of T (addendum §A4.2), so the taps are
  // concatenated in layer order, while main_proj's columns are laid out in list order; the two
  // agree only for a strictly increasing list. We require it (which also makes the ids distinct).
  for (size_t i = 0; i < d.target_layer_ids.size(); ++i) {
    const int64_t id = d.target_layer_ids[i];
    if (id < 0 || id >= L)
      return Status::invalid_argument("key 'dspark_target_layer_ids': layer " + std::to_string(id) +
                                      " is not a main layer (num_hidden_layers " + std::to_string(L) + ")");
    if (i > 0 && id <= d.target_layer_ids[i - 1])
      return Status::invalid_argument("key 'dspark_target_layer_ids' must be strictly increasing (distinct layers "
                                      "in the order the target runs them); " + std::to_string(id) + " follows " +
                                      std::to_string(d.target_layer_ids[i - 1]));
  }
  // addendum §A2.1: NS = len(compress_ratios) - num_hidden_layers, whatever
  // num_nextn_predict_layers says (still 1 in both releases).
  const int64_t ns = int64_t(c.compress_ratios.size()) - L;
  if (ns < 1)
    return Status::invalid_argument("compress_ratios has " + std::to_string(c.compress_ratios.size()) +
                                    " entries for num_hidden_layers = " + std::to_string(L) +
                                    ": a DSpark config needs one more entry per stage");
  // addendum §A2.3: every stage is SWA-only (m = 0), with no compressor and no indexer.
  for (int64_t s = 0; s < ns; ++s) {
    if (c.compress_ratios[size_t(L + s)] != 0)
      return Status::unsupported("compress_ratios entry " + std::to_string(L + s) + " (DSpark stage " +
                                 std::to_string(s) + ") is " + std::to_string(c.compress_ratios[size_t(L + s)]) +
                                 "; DSpark stages are SWA-only (0)");
  }
  return Status::ok_status();
}

Status parse_fields(const json& j, ModelConfig* c) {
  if (!j.is_object()) return Status::invalid_argument("config is not a JSON object");
  if (auto mt = j.find("model_type"); mt != j.end() && mt->is_string() && mt->get<std::string>() != "deepseek_v4")
    return Status::unsupported("model_type '" + mt->get<std::string>() + "' is not deepseek_v4");
  DSV4_TRY(get_int(j, "vocab_size", &c->vocab_size));
  DSV4_TRY(get_int(j, "hidden_size", &c->hidden_size));
  DSV4_TRY(get_int(j, "num_hidden_layers", &c->num_hidden_layers));
  DSV4_TRY(get_int(j, "num_attention_heads", &c->num_attention_heads));
  DSV4_TRY(get_int(j, "head_dim", &c->head_dim));
  DSV4_TRY(get_int(j, "qk_rope_head_dim", &c->qk_rope_head_dim));
  DSV4_TRY(get_int(j, "q_lora_rank", &c->q_lora_rank));
  DSV4_TRY(get_int(j, "o_groups", &c->o_groups));
  DSV4_TRY(get_int(j, "o_lora_rank", &c->o_lora_rank));
  DSV4_TRY(get_int(j, "sliding_window", &c->sliding_window));
  DSV4_TRY(get_num(j, "compress_rope_theta", &c->compress_rope_theta));
  DSV4_TRY(get_num(j, "rope_theta", &c->rope_theta));
  DSV4_TRY(get_int(j, "max_position_embeddings", &c->max_position_embeddings));
  DSV4_TRY(get_int(j, "index_n_heads", &c->index_n_heads));
  DSV4_TRY(get_int(j, "index_head_dim", &c->index_head_dim));
  DSV4_TRY(get_int(j, "index_topk", &c->index_topk));
  DSV4_TRY(get_int(j, "hc_mult", &c->hc_mult));
  DSV4_TRY(get_int(j, "hc_sinkhorn_iters", &c->hc_sinkhorn_iters));
  DSV4_TRY(get_num(j, "hc_eps", &c->hc_eps, false));
  DSV4_TRY(get_num(j, "rms_norm_eps", &c->rms_norm_eps, false));
  DSV4_TRY(get_int(j, "n_routed_experts", &c->n_routed_experts));
  DSV4_TRY(get_int(j, "num_experts_per_tok", &c->num_experts_per_tok));
  DSV4_TRY(get_int(j, "n_shared_experts", &c->n_shared_experts));
  DSV4_TRY(get_int(j, "moe_intermediate_size", &c->moe_intermediate_size));
  DSV4_TRY(get_int(j, "num_hash_layers", &c->num_hash_layers));
  DSV4_TRY(get_num(j, "routed_scaling_factor", &c->routed_scaling_factor));
  DSV4_TRY(get_num(j, "swiglu_limit", &c->swiglu_limit, false));
  DSV4_TRY(get_int(j, "num_nextn_predict_layers", &c->num_nextn_predict_layers, false));
  DSV4_TRY(get_int(j, "bos_token_id", &c->bos_token_id, false));
  DSV4_TRY(get_int(j, "eos_token_id", &c->eos_token_id, false));

  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key().rfind("dspark_", 0) == 0) c->revision = Revision::dspark;   // addendum §A6.5
  if (c->revision == Revision::dspark) DSV4_TRY(parse_dspark(j, c));

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

  auto cr = j.find("compress_ratios");
  if (cr == j.end() || !cr->is_array()) return Status::invalid_argument("missing array 'compress_ratios'");
  for (const auto& v : *cr) {
    if (!v.is_number_integer()) return Status::invalid_argument("compress_ratios entries must be integers");
    const int64_t m = v.get<int64_t>();
    if (m != 0 && m != 4 && m != 128)
      return Status::unsupported("compress_ratios entry " + std::to_string(m) + " (only 0, 4, 128 exist in V4)");
    c->compress_ratios.push_back(int(m));
  }

  // Range checks: every later size computation relies on these.
  DSV4_TRY(positive("vocab_size", c->vocab_size, 1 << 24));
  DSV4_TRY(positive("hidden_size", c->hidden_size, 1 << 16));
  DSV4_TRY(positive("num_hidden_layers", c->num_hidden_layers, 1024));
  DSV4_TRY(positive("num_attention_heads", c->num_attention_heads, 4096));
  DSV4_TRY(positive("head_dim", c->head_dim, 1 << 12));
  DSV4_TRY(positive("qk_rope_head_dim", c->qk_rope_head_dim, c->head_dim));
  DSV4_TRY(positive("q_lora_rank", c->q_lora_rank, 1 << 16));
  DSV4_TRY(positive("o_groups", c->o_groups, c->num_attention_heads));
  DSV4_TRY(positive("o_lora_rank", c->o_lora_rank, 1 << 16));
  DSV4_TRY(positive("sliding_window", c->sliding_window, 1 << 16));
  DSV4_TRY(positive("max_position_embeddings", c->max_position_embeddings, int64_t(1) << 32));
  DSV4_TRY(positive("index_n_heads", c->index_n_heads, 4096));
  DSV4_TRY(positive("index_head_dim", c->index_head_dim, 1 << 12));
  DSV4_TRY(positive("index_topk", c->index_topk, int64_t(1) << 32));
  DSV4_TRY(positive("hc_mult", c->hc_mult, 64));
  DSV4_TRY(positive("hc_sinkhorn_iters", c->hc_sinkhorn_iters, 1000));
  DSV4_TRY(positive("n_routed_experts", c->n_routed_experts, 1 << 16));
  DSV4_TRY(positive("num_experts_per_tok", c->num_experts_per_tok, c->n_routed_experts));
  DSV4_TRY(positive("moe_intermediate_size", c->moe_intermediate_size, 1 << 20));
  // Bounds the inventory (6 routed-expert tensors per expert per block) so a hostile config cannot
  // make expected_tensors allocate without limit; Pro-0813 has 64 x 384.
  if (int64_t(c->compress_ratios.size()) * c->n_routed_experts > (int64_t(1) << 18))
    return Status::unsupported("len(compress_ratios) x n_routed_experts is implausibly large");
  if (c->n_shared_experts != 1) return Status::unsupported("n_shared_experts must be 1 (V4 has one shared expert)");
  if (c->num_hash_layers < 0 || c->num_hash_layers > c->num_hidden_layers)
    return Status::invalid_argument("num_hash_layers out of range");
  if (c->qk_rope_head_dim % 2 != 0 || c->qk_rope_head_dim > c->index_head_dim)
    return Status::invalid_argument("qk_rope_head_dim must be even and fit the indexer head");
  if (c->num_attention_heads % c->o_groups != 0)
    return Status::invalid_argument("num_attention_heads must be a multiple of o_groups");
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
  if (c->rope_factor <= 0 || c->rope_original_max_pos <= 0 || c->rope_theta <= 1 || c->compress_rope_theta <= 1)
    return Status::invalid_argument("rope parameters out of range");
  if (c->rms_norm_eps < 0 || c->rms_norm_eps >= 1 || c->hc_eps < 0 || c->hc_eps >= 1)
    return Status::invalid_argument("rms_norm_eps and hc_eps must be in [0, 1)");
  if (c->swiglu_limit < 0 || c->routed_scaling_factor <= 0)
    return Status::invalid_argument("swiglu_limit must be >= 0 and routed_scaling_factor > 0");
  return Status::ok_status();
}

}  // namespace

Result<ModelConfig> parse_config(const std::string& text, const std::string& name) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(name + ": not valid JSON");
  ModelConfig c;
  Status s = parse_fields(j, &c);
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

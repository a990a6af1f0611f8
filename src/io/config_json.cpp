#include "io/config_json.h"

#include <algorithm>
#include <cmath>

namespace dsv4::io {

using nlohmann::json;

Status get_int(const json& j, const char* key, int64_t* out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Status::invalid_argument(std::string("missing key '") + key + "'") : Status::ok_status();
  }
  if (!it->is_number_integer()) return Status::invalid_argument(std::string("key '") + key + "' must be an integer");
  *out = it->get<int64_t>();
  return Status::ok_status();
}

Status get_num(const json& j, const char* key, double* out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Status::invalid_argument(std::string("missing key '") + key + "'") : Status::ok_status();
  }
  if (!it->is_number()) return Status::invalid_argument(std::string("key '") + key + "' must be a number");
  *out = it->get<double>();
  if (!std::isfinite(*out)) return Status::invalid_argument(std::string("key '") + key + "' must be finite");
  return Status::ok_status();
}

Status positive(const char* key, int64_t v, int64_t max) {
  if (v <= 0 || v > max) return Status::invalid_argument(std::string("key '") + key + "' = " + std::to_string(v) + " is out of range");
  return Status::ok_status();
}

Status get_int_list(const json& j, const char* key, std::vector<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::invalid_argument(std::string("missing key '") + key + "'");
  if (!it->is_array()) return Status::invalid_argument(std::string("key '") + key + "' must be an array of integers");
  out->clear();
  for (const auto& v : *it) {
    if (!v.is_number_integer()) return Status::invalid_argument(std::string("key '") + key + "' entries must be integers");
    out->push_back(v.get<int64_t>());
  }
  return Status::ok_status();
}

Status expect_string(const json& j, const char* key, const char* want) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::invalid_argument(std::string("missing key '") + key + "'");
  if (!it->is_string() || it->get<std::string>() != want)
    return Status::unsupported(std::string("key '") + key + "' is " + it->dump() + ", expected \"" + want + "\"");
  return Status::ok_status();
}

Status read_shared_fields(const json& j, bool all_required, ModelConfig* c) {
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
  DSV4_TRY(get_num(j, "hc_eps", &c->hc_eps, all_required));
  DSV4_TRY(get_num(j, "rms_norm_eps", &c->rms_norm_eps, all_required));
  DSV4_TRY(get_int(j, "n_routed_experts", &c->n_routed_experts));
  DSV4_TRY(get_int(j, "num_experts_per_tok", &c->num_experts_per_tok));
  DSV4_TRY(get_int(j, "n_shared_experts", &c->n_shared_experts));
  DSV4_TRY(get_int(j, "moe_intermediate_size", &c->moe_intermediate_size));
  DSV4_TRY(get_num(j, "routed_scaling_factor", &c->routed_scaling_factor));
  DSV4_TRY(get_num(j, "swiglu_limit", &c->swiglu_limit, all_required));
  DSV4_TRY(get_int(j, "num_nextn_predict_layers", &c->num_nextn_predict_layers, all_required));
  return Status::ok_status();
}

Status read_compress_ratios(const json& j, std::initializer_list<int> allowed, const char* family, ModelConfig* c) {
  auto cr = j.find("compress_ratios");
  if (cr == j.end() || !cr->is_array()) return Status::invalid_argument("missing array 'compress_ratios'");
  for (const auto& v : *cr) {
    if (!v.is_number_integer()) return Status::invalid_argument("compress_ratios entries must be integers");
    const int64_t m = v.get<int64_t>();
    if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) {
      std::string list;
      for (int a : allowed) list += (list.empty() ? "" : ", ") + std::to_string(a);
      return Status::unsupported("compress_ratios entry " + std::to_string(m) + " (only " + list + " exist in " +
                                 family + ")");
    }
    c->compress_ratios.push_back(int(m));
  }
  return Status::ok_status();
}

Status check_shared_fields(const ModelConfig& c) {
  DSV4_TRY(positive("vocab_size", c.vocab_size, 1 << 24));
  DSV4_TRY(positive("hidden_size", c.hidden_size, 1 << 16));
  DSV4_TRY(positive("num_hidden_layers", c.num_hidden_layers, 1024));
  DSV4_TRY(positive("num_attention_heads", c.num_attention_heads, 4096));
  DSV4_TRY(positive("head_dim", c.head_dim, 1 << 12));
  DSV4_TRY(positive("qk_rope_head_dim", c.qk_rope_head_dim, c.head_dim));
  DSV4_TRY(positive("q_lora_rank", c.q_lora_rank, 1 << 16));
  DSV4_TRY(positive("o_groups", c.o_groups, c.num_attention_heads));
  DSV4_TRY(positive("o_lora_rank", c.o_lora_rank, 1 << 16));
  DSV4_TRY(positive("sliding_window", c.sliding_window, 1 << 16));
  DSV4_TRY(positive("max_position_embeddings", c.max_position_embeddings, int64_t(1) << 32));
  DSV4_TRY(positive("index_n_heads", c.index_n_heads, 4096));
  DSV4_TRY(positive("index_head_dim", c.index_head_dim, 1 << 12));
  DSV4_TRY(positive("index_topk", c.index_topk, int64_t(1) << 32));
  DSV4_TRY(positive("hc_mult", c.hc_mult, 64));
  DSV4_TRY(positive("hc_sinkhorn_iters", c.hc_sinkhorn_iters, 1000));
  DSV4_TRY(positive("n_routed_experts", c.n_routed_experts, 1 << 16));
  DSV4_TRY(positive("num_experts_per_tok", c.num_experts_per_tok, c.n_routed_experts));
  DSV4_TRY(positive("moe_intermediate_size", c.moe_intermediate_size, 1 << 20));
  // Bounds the inventory (6 routed-expert tensors per expert per block) so a hostile config cannot
  // make expected_tensors allocate without limit; Pro-0813 has 64 x 384.
  if (int64_t(c.compress_ratios.size()) * c.n_routed_experts > (int64_t(1) << 18))
    return Status::unsupported("len(compress_ratios) x n_routed_experts is implausibly large");
  if (c.n_shared_experts != 1) return Status::unsupported("n_shared_experts must be 1 (V4 and V4.1 have one shared expert)");
  if (c.qk_rope_head_dim % 2 != 0 || c.qk_rope_head_dim > c.index_head_dim)
    return Status::invalid_argument("qk_rope_head_dim must be even and fit the indexer head");
  if (c.num_attention_heads % c.o_groups != 0)
    return Status::invalid_argument("num_attention_heads must be a multiple of o_groups");
  if (c.rope_factor <= 0 || c.rope_original_max_pos <= 0 || c.rope_theta <= 1 || c.compress_rope_theta <= 1)
    return Status::invalid_argument("rope parameters out of range");
  if (c.rms_norm_eps < 0 || c.rms_norm_eps >= 1 || c.hc_eps < 0 || c.hc_eps >= 1)
    return Status::invalid_argument("rms_norm_eps and hc_eps must be in [0, 1)");
  if (c.swiglu_limit < 0 || c.routed_scaling_factor <= 0)
    return Status::invalid_argument("swiglu_limit must be >= 0 and routed_scaling_factor > 0");
  return Status::ok_status();
}

// All four keys are required once any is present (addendum §A2.1).
Status parse_dspark(const json& j, DsparkConfig* d) {
  DSV4_TRY(get_int(j, "dspark_block_size", &d->block_size));
  DSV4_TRY(get_int(j, "dspark_noise_token_id", &d->noise_token_id));
  DSV4_TRY(get_int(j, "dspark_markov_rank", &d->markov_rank));
  auto t = j.find("dspark_target_layer_ids");
  if (t == j.end() || !t->is_array() || t->empty())
    return Status::invalid_argument("key 'dspark_target_layer_ids' must be a non-empty array of layer ids");
  for (const auto& v : *t) {
    if (!v.is_number_integer()) return Status::invalid_argument("key 'dspark_target_layer_ids' entries must be integers");
    d->target_layer_ids.push_back(v.get<int64_t>());
  }
  return Status::ok_status();
}

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

}  // namespace dsv4::io

// V4.1-Flash's root config.json (v4.1 §2.1): the root's token ids and quantization_config, the
// text model in text_config, the vision tower in vision_config; then the derived layer schedule
// (v4.1 §2.3). Every key is checked; a config in the pre-release spelling is refused by name.
#include <algorithm>
#include <string>

#include "io/config_json.h"
#include "io/engram_primes.h"

namespace dsv4::io {

using nlohmann::json;

namespace {

// v4.1 §2.4: names that ports accept from a "legacy" config, with the released name of each.
struct Spelling {
  const char* pre_release;
  const char* released;
};
constexpr Spelling kTextSpellings[] = {{"kv_source_layers", "kv_source_layer_ids"},
                                       {"index_source_layers", "index_source_layer_ids"},
                                       {"candidate_source_layer", "candidate_source_layer_id"},
                                       {"engram_pad_id", "engram_pad_token_id"},
                                       {"dspark_n_activated_experts", "dspark_num_experts_per_tok"}};
constexpr Spelling kVisionSpellings[] = {{"max_num_tokens", "max_image_tokens"}};

// The rule followed for the trap of v4.1 §2.4: the pre-release spelling is refused, never mapped.
// The released key names and values are CFG41 (high reliability: a pinned per-key record plus four
// independent fixtures). The legacy names come from ports only, and which HF revision carried
// them is not proven (§14 U5): the one candidate, fb2764a5, has a config.json with a different
// hash, so values other than the names may differ too. Mapping the names would load such a file
// as if it were the release; refusing says what to fix. (The spec allows either; it requires
// refusing a file with both spellings, which this does as well.)
Status refuse_pre_release(const std::string& where, const std::string& found, const std::string& released) {
  return Status::unsupported(where + found + " is the pre-release spelling of " + released +
                             " (v4.1 §2.4); only the released DeepSeek-V4.1-Flash config (revision dba1be0a) "
                             "is read, because what else differs in the pre-release one is unknown (v4.1 §14 U5)");
}

Status check_spellings(const json& j, const Spelling* begin, const Spelling* end) {
  for (const Spelling* s = begin; s != end; ++s)
    if (j.contains(s->pre_release))
      return refuse_pre_release("key ", std::string("'") + s->pre_release + "'", std::string("'") + s->released + "'");
  return Status::ok_status();
}

// A model_type whose pre-release spelling is known (v4.1 §2.4).
Status check_model_type(const json& j, const char* released, const char* pre_release) {
  auto mt = j.find("model_type");
  if (mt != j.end() && mt->is_string() && mt->get<std::string>() == pre_release)
    return refuse_pre_release("model_type ", mt->dump(), std::string("\"") + released + "\"");
  return expect_string(j, "model_type", released);
}

Status expect_bool(const json& j, const char* key, bool want, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return required ? Status::invalid_argument(std::string("missing key '") + key + "'") : Status::ok_status();
  if (!it->is_boolean() || it->get<bool>() != want)
    return Status::unsupported(std::string("key '") + key + "' is " + it->dump() + ", expected " + (want ? "true" : "false"));
  return Status::ok_status();
}

Status token_id(const char* key, int64_t id, int64_t vocab) {
  if (id < 0 || id >= vocab)
    return Status::invalid_argument(std::string("key '") + key + "' = " + std::to_string(id) +
                                    " is not a token id (vocab_size " + std::to_string(vocab) + ")");
  return Status::ok_status();
}

// A list of main-layer ids, strictly increasing (the reference looks layers up by membership, so
// order carries no meaning; we keep one canonical form).
Status check_layer_list(const char* key, const std::vector<int64_t>& ids, int64_t L) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= L)
      return Status::invalid_argument(std::string("key '") + key + "': layer " + std::to_string(ids[i]) +
                                      " is not a main layer (num_hidden_layers " + std::to_string(L) + ")");
    if (i > 0 && ids[i] <= ids[i - 1])
      return Status::invalid_argument(std::string("key '") + key + "' must be strictly increasing; " +
                                      std::to_string(ids[i]) + " follows " + std::to_string(ids[i - 1]));
  }
  return Status::ok_status();
}

bool contains(const std::vector<int64_t>& ids, int64_t l) { return std::find(ids.begin(), ids.end(), l) != ids.end(); }

// The largest id <= l, or -1.
int64_t group_of(const std::vector<int64_t>& ids, int64_t l) {
  int64_t g = -1;
  for (int64_t s : ids)
    if (s <= l) g = s;
  return g;
}

// v4.1 §2.1 quantization_config, at the root: the only layout the reference has (its
// module-level fp8_block_size = 32, scale_fmt "ue8m0", FP4 experts; v4.1 §2.2).
Status parse_quantization(const json& root, V41Config* v) {
  auto q = root.find("quantization_config");
  if (q == root.end() || !q->is_object()) return Status::invalid_argument("missing object 'quantization_config'");
  Status s = [&]() -> Status {
    DSV4_TRY(expect_string(*q, "quant_method", "fp8"));
    DSV4_TRY(expect_string(*q, "activation_scheme", "dynamic"));
    DSV4_TRY(expect_string(*q, "scale_fmt", "ue8m0"));
    DSV4_TRY(expect_string(*q, "expert_dtype", "fp4"));
    std::vector<int64_t> block;
    DSV4_TRY(get_int_list(*q, "weight_block_size", &block));
    if (block != std::vector<int64_t>{32, 32})
      return Status::unsupported("key 'weight_block_size' must be [32, 32] (v4.1 §3.2)");
    v->fp8_block = 32;
    return Status::ok_status();
  }();
  return s.with_context("quantization_config");
}

Status parse_vision(const json& vj, V41VisionConfig* v) {
  Status s = [&]() -> Status {
    DSV4_TRY(check_spellings(vj, std::begin(kVisionSpellings), std::end(kVisionSpellings)));
    DSV4_TRY(check_model_type(vj, "deepseek_v41_vision", "deepseek_v4.1_vision"));
    DSV4_TRY(get_int(vj, "num_hidden_layers", &v->num_hidden_layers));
    DSV4_TRY(get_int(vj, "hidden_size", &v->hidden_size));
    DSV4_TRY(get_int(vj, "num_attention_heads", &v->num_attention_heads));
    DSV4_TRY(get_int(vj, "intermediate_size", &v->intermediate_size));
    DSV4_TRY(get_int(vj, "patch_size", &v->patch_size));
    DSV4_TRY(get_num(vj, "rope_theta", &v->rope_theta));
    DSV4_TRY(get_int(vj, "downsample_ratio", &v->downsample_ratio));
    DSV4_TRY(get_int(vj, "max_image_tokens", &v->max_image_tokens));
    DSV4_TRY(get_int(vj, "min_pixels", &v->min_pixels));
    if (!vj.contains("max_wh_ratio")) return Status::invalid_argument("missing key 'max_wh_ratio' (null in the release)");
    if (!vj["max_wh_ratio"].is_null()) {
      double r = 0;
      DSV4_TRY(get_num(vj, "max_wh_ratio", &r));
      if (r <= 0) return Status::invalid_argument("key 'max_wh_ratio' must be null or positive");
      v->max_wh_ratio = r;
    }
    DSV4_TRY(positive("num_hidden_layers", v->num_hidden_layers, 1024));
    DSV4_TRY(positive("hidden_size", v->hidden_size, 1 << 16));
    DSV4_TRY(positive("num_attention_heads", v->num_attention_heads, v->hidden_size));
    DSV4_TRY(positive("intermediate_size", v->intermediate_size, 1 << 20));
    DSV4_TRY(positive("patch_size", v->patch_size, 1024));
    DSV4_TRY(positive("downsample_ratio", v->downsample_ratio, 64));
    DSV4_TRY(positive("max_image_tokens", v->max_image_tokens, 1 << 24));
    DSV4_TRY(positive("min_pixels", v->min_pixels, int64_t(1) << 40));
    // v4.1 §12: 2-D RoPE rotates half of each head per image axis, in pairs.
    if (v->hidden_size % v->num_attention_heads != 0 || (v->hidden_size / v->num_attention_heads) % 4 != 0)
      return Status::unsupported("hidden_size / num_attention_heads must be a multiple of 4 (2-D RoPE, v4.1 §12)");
    if (v->rope_theta <= 1) return Status::invalid_argument("key 'rope_theta' out of range");
    return Status::ok_status();
  }();
  return s.with_context("vision_config");
}

Status parse_engram(const json& t, int64_t vocab, V41EngramConfig* e) {
  DSV4_TRY(get_int_list(t, "engram_layer_ids", &e->layer_ids));
  DSV4_TRY(get_int_list(t, "engram_num_embeddings", &e->num_embeddings));
  DSV4_TRY(get_int(t, "engram_max_ngram_size", &e->max_ngram_size));
  DSV4_TRY(get_int(t, "engram_n_heads", &e->n_heads));
  DSV4_TRY(get_int(t, "engram_head_dim", &e->head_dim));
  DSV4_TRY(get_int(t, "engram_vocab_size", &e->vocab_size));
  DSV4_TRY(get_int(t, "engram_compressed_vocab_size", &e->compressed_vocab_size));
  DSV4_TRY(get_int(t, "engram_pad_token_id", &e->pad_token_id));
  if (e->max_ngram_size < 2 || e->max_ngram_size > 8)
    return Status::invalid_argument("key 'engram_max_ngram_size' = " + std::to_string(e->max_ngram_size) +
                                    " is out of range (n-grams of 2 or more tokens, v4.1 §5.3.2)");
  DSV4_TRY(positive("engram_n_heads", e->n_heads, 64));
  DSV4_TRY(positive("engram_head_dim", e->head_dim, 1 << 12));
  DSV4_TRY(positive("engram_vocab_size", e->vocab_size, int64_t(1) << 26));
  DSV4_TRY(positive("engram_compressed_vocab_size", e->compressed_vocab_size, vocab));
  DSV4_TRY(token_id("engram_pad_token_id", e->pad_token_id, vocab));
  // v4.1 §3.2: a table row holds one E8M0 scale per 32 elements.
  if (e->head_dim % 32 != 0) return Status::unsupported("engram_head_dim must be a multiple of 32 (v4.1 §3.2)");
  // Bounds the prime search (release: 2 layers x 24 columns), and keeps every row id below 2^31
  // (v4.1 §5.3.2): a table has about columns x vocab_size rows.
  if (int64_t(e->layer_ids.size()) * e->columns() > 1024)
    return Status::unsupported("engram_layer_ids x hash columns is implausibly large");
  if (e->columns() * e->vocab_size >= (int64_t(1) << 31))
    return Status::unsupported("engram_vocab_size x hash columns does not fit int32 row ids (v4.1 §5.3.2)");
  if (e->num_embeddings.size() != e->layer_ids.size())
    return Status::invalid_argument("engram_num_embeddings has " + std::to_string(e->num_embeddings.size()) +
                                    " entries for " + std::to_string(e->layer_ids.size()) + " engram_layer_ids");
  // v4.1 §5.3.2: each table has exactly the rows its prime moduli span; the reference derives the
  // same sums, and row ids past the table would read outside it. Rows fit int32 (v4.1 §5.3.2).
  const auto primes = engram_primes(*e);
  for (size_t k = 0; k < primes.size(); ++k) {
    int64_t rows = 0;
    for (int64_t p : primes[k]) rows += p;
    if (e->num_embeddings[k] != rows)
      return Status::invalid_argument("engram_num_embeddings[" + std::to_string(k) + "] = " +
                                      std::to_string(e->num_embeddings[k]) + ", but the prime rule of v4.1 §5.3.2 gives " +
                                      std::to_string(rows) + " rows for engram_vocab_size " +
                                      std::to_string(e->vocab_size));
    if (rows >= (int64_t(1) << 31))
      return Status::unsupported("engram_num_embeddings[" + std::to_string(k) + "] does not fit int32 row ids");
  }
  return Status::ok_status();
}

// The text model keys only V4.1 has (v4.1 §2.1), with the checks that need just them.
Status parse_text_v41(const json& t, ModelConfig* c) {
  V41Config& v = c->v41;
  DSV4_TRY(get_int_list(t, "kv_source_layer_ids", &v.kv_source_layer_ids));
  DSV4_TRY(get_int_list(t, "index_source_layer_ids", &v.index_source_layer_ids));
  DSV4_TRY(get_int(t, "candidate_source_layer_id", &v.candidate_source_layer_id));
  DSV4_TRY(get_int(t, "candidate_topk_blocks", &v.candidate_topk_blocks));
  DSV4_TRY(get_int(t, "candidate_block_size", &v.candidate_block_size));
  DSV4_TRY(get_int(t, "dspark_n_routed_experts", &v.dspark_n_routed_experts));
  DSV4_TRY(get_int(t, "dspark_num_experts_per_tok", &v.dspark_num_experts_per_tok));
  DSV4_TRY(parse_engram(t, c->vocab_size, &v.engram));
  DSV4_TRY(positive("dspark_n_routed_experts", v.dspark_n_routed_experts, 1 << 16));
  DSV4_TRY(positive("dspark_num_experts_per_tok", v.dspark_num_experts_per_tok, v.dspark_n_routed_experts));
  if (v.candidate_source_layer_id != -1) {
    DSV4_TRY(positive("candidate_topk_blocks", v.candidate_topk_blocks, int64_t(1) << 32));
    DSV4_TRY(positive("candidate_block_size", v.candidate_block_size, int64_t(1) << 32));
  }
  return Status::ok_status();
}

// The fixed parts of text_config: values the reference has no other code path for.
Status check_text_constants(const json& t) {
  DSV4_TRY(check_model_type(t, "deepseek_v41_text", "deepseek_v4.1_text"));
  int64_t kv_heads = 0;
  DSV4_TRY(get_int(t, "num_key_value_heads", &kv_heads));
  if (kv_heads != 1) return Status::unsupported("key 'num_key_value_heads' must be 1 (one shared K=V latent head)");
  DSV4_TRY(expect_string(t, "scoring_func", "sqrtsoftplus"));
  DSV4_TRY(expect_string(t, "topk_method", "noaux_tc"));
  DSV4_TRY(expect_bool(t, "norm_topk_prob", true, true));
  // Either would add tensors the release does not have.
  DSV4_TRY(expect_bool(t, "attention_bias", false, false));
  DSV4_TRY(expect_bool(t, "tie_word_embeddings", false, false));
  return Status::ok_status();
}

// v4.1 §2.1 rope_scaling: the key is `rope_type` (V4 spelled it `type`), and every key is given.
Status parse_rope_scaling(const json& t, ModelConfig* c) {
  auto rs = t.find("rope_scaling");
  if (rs == t.end() || !rs->is_object()) return Status::invalid_argument("missing object 'rope_scaling'");
  Status s = [&]() -> Status {
    DSV4_TRY(expect_string(*rs, "rope_type", "yarn"));
    DSV4_TRY(get_num(*rs, "factor", &c->rope_factor));
    DSV4_TRY(get_int(*rs, "original_max_position_embeddings", &c->rope_original_max_pos));
    DSV4_TRY(get_num(*rs, "beta_fast", &c->beta_fast));
    DSV4_TRY(get_num(*rs, "beta_slow", &c->beta_slow));
    return Status::ok_status();
  }();
  return s.with_context("rope_scaling");
}

// Shapes the 32-wide FP8 blocks and FP4 groups need (v4.1 §3.2: all V4.1 dims are multiples of
// 32), and the KV stage count (v4.1 §2.1: num_nextn_predict_layers agrees with compress_ratios).
Status check_text_shapes(const ModelConfig& c) {
  for (auto [key, val] : {std::pair{"hidden_size", c.hidden_size}, {"q_lora_rank", c.q_lora_rank},
                          {"moe_intermediate_size", c.moe_intermediate_size}, {"o_lora_rank", c.o_lora_rank},
                          {"head_dim", c.head_dim}, {"index_head_dim", c.index_head_dim},
                          {"heads per group x head_dim", c.num_attention_heads / c.o_groups * c.head_dim}}) {
    if (val % 32 != 0) return Status::unsupported(std::string(key) + " must be a multiple of 32 (FP8 block, v4.1 §3.2)");
  }
  const int64_t L = c.num_hidden_layers;
  if (c.num_nextn_predict_layers < 1 || c.num_nextn_predict_layers > 16 ||
      int64_t(c.compress_ratios.size()) != L + c.num_nextn_predict_layers)
    return Status::invalid_argument("compress_ratios has " + std::to_string(c.compress_ratios.size()) +
                                    " entries, expected num_hidden_layers + num_nextn_predict_layers = " +
                                    std::to_string(L) + " + " + std::to_string(c.num_nextn_predict_layers) +
                                    " (the DSpark stages, v4.1 §2.1)");
  return Status::ok_status();
}

// v4.1 §2.3 and Appendix A: the role of every layer, checked while it is derived.
Status derive_schedule(ModelConfig* c) {
  V41Config& v = c->v41;
  const int64_t L = c->num_hidden_layers;
  DSV4_TRY(check_layer_list("kv_source_layer_ids", v.kv_source_layer_ids, L));
  DSV4_TRY(check_layer_list("index_source_layer_ids", v.index_source_layer_ids, L));
  DSV4_TRY(check_layer_list("engram_layer_ids", v.engram.layer_ids, L));
  for (int64_t s : v.kv_source_layer_ids) {
    // Index keys are projected from the source's own latent, inside its indexer, so a KV source
    // that ran no indexer would leave its group without keys (v4.1 §2.3 "Index-key owner").
    if (!contains(v.index_source_layer_ids, s))
      return Status::invalid_argument("KV source layer " + std::to_string(s) +
                                      " is not in index_source_layer_ids (it owns its group's index keys, v4.1 §2.3)");
  }
  const int64_t cand = v.candidate_source_layer_id;
  if (cand != -1 && !contains(v.index_source_layer_ids, cand))
    return Status::invalid_argument("candidate_source_layer_id " + std::to_string(cand) +
                                    " is neither -1 (no candidate filter) nor an index source (v4.1 §5.8.3)");

  // v4.1 §6: past the last KV source no layer adds position-indexed state; the last source's
  // latent depends on its input only. So the decoder starts there (layer 20 in the release, the
  // split RPT states); with no KV source every layer is window-only and there is no split.
  v.decoder_start = v.kv_source_layer_ids.empty() ? L : v.kv_source_layer_ids.back();
  v.layers.assign(c->compress_ratios.size(), V41Layer{});
  for (int64_t l = 0; l < int64_t(v.layers.size()); ++l) {
    V41Layer& r = v.layers[size_t(l)];
    r.ratio = c->ratio(l);
    r.dspark_stage = l >= L;
    // v4.1 §7.3: DSpark stages route over their own experts.
    r.n_experts = r.dspark_stage ? v.dspark_n_routed_experts : c->n_routed_experts;
    r.experts_per_tok = r.dspark_stage ? v.dspark_num_experts_per_tok : c->num_experts_per_tok;
    // DSpark stages are never sources (v4.1 §2.3), and check_dspark keeps them at m = 0.
    if (r.dspark_stage) continue;
    r.decoder = l >= v.decoder_start;
    r.tapped = contains(c->dspark.target_layer_ids, l);
    for (size_t k = 0; k < v.engram.layer_ids.size(); ++k)
      if (v.engram.layer_ids[k] == l) r.engram = int64_t(k);
    r.kv_source = contains(v.kv_source_layer_ids, l);
    r.index_source = contains(v.index_source_layer_ids, l);
    const std::string at = "layer " + std::to_string(l) + " (compress ratio " + std::to_string(r.ratio) + ")";
    if (r.ratio == 0) {
      if (r.kv_source || r.index_source)
        return Status::invalid_argument(at + " is listed as a KV or index source but compresses nothing");
      continue;
    }
    r.kv_group = group_of(v.kv_source_layer_ids, l);
    if (r.kv_group < 0) return Status::invalid_argument(at + " has no KV source at or before it (v4.1 §2.3)");
    // v4.1 §2.3 load-time check: a layer reads its source's entries as entries of its own ratio.
    if (c->ratio(r.kv_group) != r.ratio)
      return Status::invalid_argument(at + " reads the compressed KV of layer " + std::to_string(r.kv_group) +
                                      ", whose ratio is " + std::to_string(c->ratio(r.kv_group)) + " (v4.1 §2.3)");
    r.index_group = group_of(v.index_source_layer_ids, l);   // >= kv_group: every KV source indexes
    r.candidate_source = l == cand;
    r.candidate_consumer = r.index_source && cand != -1 && l > cand;
    // v4.1 §5.8.3: the candidate mask covers the source's compressed positions, i.e. its KV group.
    if (r.candidate_consumer && r.kv_group != v.layers[size_t(cand)].kv_group)
      return Status::invalid_argument(at + " would filter by the candidate blocks of layer " + std::to_string(cand) +
                                      ", which reads another KV group (v4.1 §5.8.3)");
  }
  return Status::ok_status();
}

Status parse_text_config(const json& t, ModelConfig* c) {
  Status s = [&]() -> Status {
    DSV4_TRY(check_spellings(t, std::begin(kTextSpellings), std::end(kTextSpellings)));
    DSV4_TRY(check_text_constants(t));
    DSV4_TRY(read_shared_fields(t, /*all_required=*/true, c));
    DSV4_TRY(parse_rope_scaling(t, c));
    DSV4_TRY(read_compress_ratios(t, {0, 1, 2}, "V4.1", c));
    DSV4_TRY(parse_dspark(t, &c->dspark));
    DSV4_TRY(check_shared_fields(*c));
    DSV4_TRY(check_text_shapes(*c));
    DSV4_TRY(check_dspark(*c));
    DSV4_TRY(parse_text_v41(t, c));
    return derive_schedule(c);
  }();
  return s.with_context("text_config");
}

}  // namespace

Status parse_v41_config(const json& root, ModelConfig* c) {
  c->architecture = Architecture::v41;
  c->revision = Revision::dspark;   // the §A6.5 rule: it has dspark_* keys (see config.h)
  c->experts_fp4 = true;            // quantization_config.expert_dtype, checked below
  DSV4_TRY(check_model_type(root, "deepseek_v41", "deepseek_v4.1"));
  auto arch = root.find("architectures");
  if (arch != root.end() && *arch == json::array({"DeepseekV41ForConditionalGeneration"}))
    return refuse_pre_release("architectures ", arch->dump(), "[\"DeepseekV41ForCausalLM\"]");
  if (arch == root.end() || *arch != json::array({"DeepseekV41ForCausalLM"}))
    return Status::unsupported("key 'architectures' must be [\"DeepseekV41ForCausalLM\"] (v4.1 §2.1)");
  if (auto dt = root.find("dtype"); dt != root.end()) DSV4_TRY(expect_string(root, "dtype", "bfloat16"));

  auto text = root.find("text_config");
  if (text == root.end() || !text->is_object()) return Status::invalid_argument("missing object 'text_config'");
  auto vision = root.find("vision_config");
  // The release has a vision tower; its presence also gives every MoE gate its `bias_vl` (v4.1 §2.1).
  if (vision == root.end() || !vision->is_object())
    return Status::invalid_argument("missing object 'vision_config' (DeepSeek-V4.1-Flash has a vision tower, v4.1 §2.1)");
  DSV4_TRY(parse_text_config(*text, c));
  DSV4_TRY(parse_vision(*vision, &c->v41.vision));
  DSV4_TRY(parse_quantization(root, &c->v41));

  // v4.1 §2.1: the token ids live at the root, not in text_config.
  V41Config& v = c->v41;
  DSV4_TRY(get_int(root, "bos_token_id", &c->bos_token_id));
  DSV4_TRY(get_int(root, "eos_token_id", &c->eos_token_id));
  DSV4_TRY(get_int(root, "pad_token_id", &v.pad_token_id));
  DSV4_TRY(get_int(root, "image_token_id", &v.image_token_id));
  for (auto [key, id] : {std::pair{"bos_token_id", c->bos_token_id}, {"eos_token_id", c->eos_token_id},
                         {"pad_token_id", v.pad_token_id}, {"image_token_id", v.image_token_id}})
    DSV4_TRY(token_id(key, id, c->vocab_size));
  return Status::ok_status();
}

}  // namespace dsv4::io

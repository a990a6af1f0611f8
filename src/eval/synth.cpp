#include "eval/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/rng.h"
#include "eval/synth_config_v41.h"
#include "io/integrity.h"
#include "io/inventory.h"
#include "model/engram.h"

namespace dsv4::eval {

namespace fs = std::filesystem;
// synth writes what the loader reads: the io layer's inventory, safetensors writer and checksums.
using io::ChecksumEntry;
using io::ModelConfig;
using io::Sha256;
using io::TensorSpec;
using io::expected_tensors;
using io::format_sha256sums;
using io::parse_config;
using io::sha256_file;
using io::write_safetensors_chunked;
using ojson = nlohmann::ordered_json;

bool parse_synth_preset(std::string_view name, SynthPreset* out) {
  if (name == "tiny") *out = SynthPreset::tiny;
  else if (name == "flash") *out = SynthPreset::flash;
  else if (name == "pro") *out = SynthPreset::pro;
  else if (name == "tiny-0731") *out = SynthPreset::tiny_0731;
  else if (name == "tiny-0813") *out = SynthPreset::tiny_0813;
  else if (name == "flash-0731") *out = SynthPreset::flash_0731;
  else if (name == "pro-0813") *out = SynthPreset::pro_0813;
  else if (name == "tiny-v41") *out = SynthPreset::tiny_v41;
  else if (name == "flash-v41") *out = SynthPreset::flash_v41;
  else return false;
  return true;
}

namespace {

bool is_dspark(SynthPreset p) {
  return p == SynthPreset::tiny_0731 || p == SynthPreset::tiny_0813 || p == SynthPreset::flash_0731 ||
         p == SynthPreset::pro_0813;
}

// The preview preset whose dimensions a preset has (addendum §A1: the main stack of each release is
// its preview's).
SynthPreset dims_of(SynthPreset p) {
  switch (p) {
    case SynthPreset::tiny_0731:
    case SynthPreset::tiny_0813: return SynthPreset::tiny;
    case SynthPreset::flash_0731: return SynthPreset::flash;
    case SynthPreset::pro_0813: return SynthPreset::pro;
    default: return p;
  }
}

// The preview preset whose layer schedule a preset has: the tiny releases take their release's, so
// that release_name (io/config.cpp) names them like it.
SynthPreset schedule_of(SynthPreset p) {
  switch (p) {
    case SynthPreset::tiny_0731: return SynthPreset::flash;
    case SynthPreset::tiny_0813: return SynthPreset::pro;
    default: return dims_of(p);
  }
}

// The dimensions that differ between presets (spec §1, §2.1; tiny = shared fixture `tiny`).
struct PresetDims {
  int64_t vocab, hidden, layers, heads, head_dim, q_lora, o_groups, o_lora, inter, experts, topk_experts,
      hash_layers, index_heads, index_dim, index_topk;
  double route_scale;
};

PresetDims preset_dims(SynthPreset p) {
  switch (p) {
    case SynthPreset::tiny: return {1024, 256, 4, 4, 128, 128, 2, 128, 128, 8, 2, 1, 4, 64, 16, 1.5};
    case SynthPreset::flash: return {129280, 4096, 43, 64, 512, 1024, 8, 1024, 2048, 256, 6, 3, 64, 128, 512, 1.5};
    case SynthPreset::pro: return {129280, 7168, 61, 128, 512, 1536, 16, 1024, 3072, 384, 6, 3, 64, 128, 1024, 2.5};
    default: return preset_dims(dims_of(p));
  }
}

// compress_ratios entry of main layer i (spec §2.3). Flash: 0,0 then 4 (even) / 128 (odd).
// Pro: 128,128 then the same alternation. Tiny (fixture): 0 then 4 (odd) / 128 (even).
int preset_ratio(SynthPreset p, int64_t i) {
  switch (p) {
    case SynthPreset::tiny: return i == 0 ? 0 : (i % 2 == 1 ? 4 : 128);
    case SynthPreset::flash: return i < 2 ? 0 : (i % 2 == 0 ? 4 : 128);
    case SynthPreset::pro: return i < 2 ? 128 : (i % 2 == 0 ? 4 : 128);
    default: return preset_ratio(schedule_of(p), i);
  }
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// E8M0 code of the block scale that brings a dot product over `fan_in` unit-variance terms back
// to unit variance: 2^-round(log2(sqrt(fan_in))), stored as the biased exponent (spec §3.2).
uint8_t fan_in_scale_code(int64_t fan_in) {
  const double k = std::round(0.5 * std::log2(double(std::max<int64_t>(fan_in, 1))));
  return uint8_t(127 - int(k));
}

// FP4 E2M1 magnitudes drawn like |N(0,1)| rounded to the grid {0,.5,1,1.5,2,3}: out of 128,
// P(|x|<.25)=.197 -> 25, [.25,.75)=.349 -> 45, [.75,1.25)=.242 -> 31, [1.25,1.75)=.131 -> 17,
// [1.75,2.5)=.068 -> 8, >=2.5 -> 2 (spec §3.2 nibble codes 0..5). Mean square ≈ 1.02.
struct Fp4Table {
  uint8_t nibble[256];
  Fp4Table() {
    const int counts[6] = {25, 45, 31, 17, 8, 2};
    int k = 0;
    for (int code = 0; code < 6; ++code)
      for (int j = 0; j < counts[code]; ++j) nibble[k++] = uint8_t(code);
    for (int i = 0; i < 128; ++i) nibble[128 + i] = uint8_t(nibble[i] | 8);   // sign bit
  }
};
const Fp4Table kFp4Table;

// FP8 weights are stored as codes ~ N(0, kFp8CodeStd^2), the block scale 2^-log2(kFp8CodeStd)
// smaller. Real checkpoints quantise each 128x128 block to its absolute maximum (448), so their
// codes spread over the whole E4M3 range and subnormal codes (|code| < 2^-6) are rare, about
// 1e-4 of the weights; codes ~ N(0,1) would make 1.2 % of them subnormal, and subnormal FMA
// operands slow the FP8 matvec (single thread, weights in L2, Zen 5: 40 GB/s without, 31-33 GB/s
// with 5 % subnormal codes), so benchmarks on synthetic models would understate real speed.
// Rng::normal() stays within ±3.47, so codes stay within ±222 (no saturation).
constexpr int kFp8CodeStdLog2 = 6;
constexpr float kFp8CodeStd = float(1 << kFp8CodeStdLog2);

// E4M3 code of kFp8CodeStd times every value Rng::normal() can return (2^18 entries): one table
// load per FP8 weight instead of a float conversion.
struct Fp8NormalTable {
  std::vector<uint8_t> code;
  Fp8NormalTable() : code(size_t(2 * Rng::kNormalSumMax + 1)) {
    for (int64_t s = -Rng::kNormalSumMax; s <= Rng::kNormalSumMax; ++s)
      code[size_t(s + Rng::kNormalSumMax)] = f32_to_e4m3(float(s) * Rng::kNormalStep * kFp8CodeStd);
  }
};
const Fp8NormalTable& fp8_normal_table() {
  static const Fp8NormalTable table;
  return table;
}

// One row of distinct expert ids for hash routing (partial Fisher-Yates over [0, E)).
void expert_id_row(uint64_t seed, int64_t row, int64_t E, int64_t K, int64_t* out) {
  Rng rng(derive_seed(seed, uint64_t(row)));
  if (E <= 64) {
    int64_t ids[64];
    for (int64_t e = 0; e < E; ++e) ids[e] = e;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t pick = j + int64_t(rng.below(uint64_t(E - j)));
      std::swap(ids[j], ids[pick]);
      out[j] = ids[j];
    }
    return;
  }
  // Rejection sampling: K (<= 16 in practice) is tiny compared with E.
  for (int64_t j = 0; j < K; ++j) {
    for (;;) {
      const int64_t e = int64_t(rng.below(uint64_t(E)));
      if (std::find(out, out + j, e) == out + j) {
        out[j] = e;
        break;
      }
    }
  }
}

// Fills the n bytes of block `block` (starting at tensor byte byte0) from that block's own generator.
void fill_block(const SynthRecipe& r, const TensorSpec& t, uint64_t block, uint64_t byte0, uint8_t* dst, size_t n) {
  using Kind = SynthRecipe::Kind;
  Rng rng(derive_seed(r.seed, block));
  switch (r.kind) {
    case Kind::fp8_normal: {
      const uint8_t* code = fp8_normal_table().code.data() + Rng::kNormalSumMax;
      for (size_t i = 0; i < n; ++i) dst[i] = code[rng.normal_sum()];
      return;
    }
    case Kind::e8m0_const:
      std::fill(dst, dst + n, r.code);
      return;
    case Kind::fp4_normal: {
      size_t i = 0;
      while (i < n) {
        uint64_t bits = rng.next();
        for (int j = 0; j < 4 && i < n; ++j, ++i, bits >>= 16)
          dst[i] = uint8_t(kFp4Table.nibble[bits & 0xff] | (kFp4Table.nibble[(bits >> 8) & 0xff] << 4));
      }
      return;
    }
    case Kind::bf16_normal:
      for (size_t i = 0; i < n / 2; ++i) {
        const uint16_t h = f32_to_bf16(r.mean + r.stddev * rng.normal());
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case Kind::f32_normal:
      for (size_t i = 0; i < n / 4; ++i) {
        const float v = r.mean + r.stddev * rng.normal();
        std::memcpy(dst + 4 * i, &v, 4);
      }
      return;
    case Kind::expert_ids: {
      // Rows are seeded by row index so any byte range can be produced on its own.
      const int64_t K = t.shape.size() == 2 ? t.shape[1] : 1;
      const uint64_t row_bytes = uint64_t(K) * 8;
      std::vector<int64_t> row(size_t(K), 0);
      for (uint64_t b = byte0; b < byte0 + n;) {
        const uint64_t ri = b / row_bytes, in_row = b % row_bytes;
        expert_id_row(r.seed, int64_t(ri), r.n_experts, K, row.data());
        const uint64_t take = std::min<uint64_t>(row_bytes - in_row, byte0 + n - b);
        std::memcpy(dst + (b - byte0), reinterpret_cast<const uint8_t*>(row.data()) + in_row, size_t(take));
        b += take;
      }
      return;
    }
  }
}

// One "key=value" edit of SynthOptions::set.
Status apply_config_edit(const std::string& edit, ojson* config) {
  const size_t eq = edit.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::invalid_argument("synth: config edit '" + edit + "' is not KEY=VALUE");
  const std::string path = edit.substr(0, eq), text = edit.substr(eq + 1);
  ojson* node = config;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(key))
      return Status::invalid_argument("synth: config has no key '" + path.substr(0, dot) + "' (edit '" + edit + "')");
    node = &(*node)[key];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  ojson value = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  *node = value.is_discarded() ? ojson(text) : std::move(value);
  return Status::ok_status();
}

// Applies the `set` edits and checks that the result is a config the loader accepts.
Result<std::string> finish_config(ojson j, const SynthOptions& opt) {
  for (const std::string& edit : opt.set) DSV4_TRY(apply_config_edit(edit, &j));
  std::string text = j.dump(2) + "\n";
  auto check = parse_config(text, "synth config");
  if (!check.ok()) return check.status();
  return text;
}

}  // namespace

Result<std::string> synth_config_json(const SynthOptions& opt) {
  if (opt.layers < 0 || opt.experts < 0 || opt.vocab < 0 || opt.engram_vocab < 0)
    return Status::invalid_argument("synth: negative override");
  if (opt.vocab == 1) return Status::invalid_argument("synth: --vocab must be at least 2 (BOS 0, EOS 1)");
  if (opt.engram_vocab > 0 && !is_v41_preset(opt.preset))
    return Status::invalid_argument("synth: --engram-vocab applies to the V4.1 presets only (the others have no Engram)");
  // The prime search of the Engram layout runs before parse_config checks the result.
  if (opt.engram_vocab > (int64_t(1) << 26)) return Status::invalid_argument("synth: --engram-vocab is above 2^26");
  if (is_v41_preset(opt.preset)) return finish_config(synth_v41_config(opt), opt);
  PresetDims d = preset_dims(opt.preset);
  if (opt.layers > 0) d.layers = opt.layers;
  if (opt.experts > 0) d.experts = opt.experts;
  if (opt.vocab > 0) d.vocab = opt.vocab;
  d.hash_layers = std::min(d.hash_layers, d.layers);
  d.topk_experts = std::min(d.topk_experts, d.experts);
  std::vector<int> ratios;
  for (int64_t i = 0; i < d.layers; ++i) ratios.push_back(preset_ratio(opt.preset, i));
  // MTP block: SWA-only in both released models (spec §2.3); the 3 DSpark stages likewise
  // (addendum §A2.1, §A2.3).
  const int64_t drafter_blocks = is_dspark(opt.preset) ? 3 : 1;
  for (int64_t s = 0; s < drafter_blocks; ++s) ratios.push_back(0);

  // Key order and values of the official root config (spec §2.1; fixture tiny/checkpoint).
  ojson j;
  j["architectures"] = {"DeepseekV4ForCausalLM"};
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = 0;
  j["eos_token_id"] = 1;
  j["expert_dtype"] = "fp4";
  j["hc_eps"] = 1e-06;
  j["hc_mult"] = 4;
  j["hc_sinkhorn_iters"] = 20;
  j["head_dim"] = d.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = d.hidden;
  j["index_head_dim"] = d.index_dim;
  j["index_n_heads"] = d.index_heads;
  j["index_topk"] = d.index_topk;
  j["initializer_range"] = 0.02;
  j["max_position_embeddings"] = 1048576;
  j["model_type"] = "deepseek_v4";
  j["moe_intermediate_size"] = d.inter;
  j["n_routed_experts"] = d.experts;
  j["n_shared_experts"] = 1;
  j["norm_topk_prob"] = true;
  j["num_attention_heads"] = d.heads;
  j["num_experts_per_tok"] = d.topk_experts;
  j["num_hidden_layers"] = d.layers;
  j["num_hash_layers"] = d.hash_layers;
  j["num_key_value_heads"] = 1;
  j["num_nextn_predict_layers"] = 1;
  j["o_groups"] = d.o_groups;
  j["o_lora_rank"] = d.o_lora;
  j["q_lora_rank"] = d.q_lora;
  j["qk_rope_head_dim"] = 64;
  j["quantization_config"] = {{"activation_scheme", "dynamic"},
                              {"fmt", "e4m3"},
                              {"quant_method", "fp8"},
                              {"scale_fmt", "ue8m0"},
                              {"weight_block_size", {128, 128}}};
  j["rms_norm_eps"] = 1e-06;
  j["rope_scaling"] = {{"beta_fast", 32},
                       {"beta_slow", 1},
                       {"factor", 16},
                       {"original_max_position_embeddings", 65536},
                       {"type", "yarn"}};
  j["rope_theta"] = 10000;
  j["routed_scaling_factor"] = d.route_scale;
  j["scoring_func"] = "sqrtsoftplus";
  j["sliding_window"] = 128;
  j["swiglu_limit"] = 10.0;
  j["tie_word_embeddings"] = false;
  j["topk_method"] = "noaux_tc";
  j["torch_dtype"] = "bfloat16";
  j["transformers_version"] = "4.57.1";
  j["use_cache"] = true;
  j["vocab_size"] = d.vocab;
  j["compress_rope_theta"] = 160000;
  j["compress_ratios"] = ratios;
  if (is_dspark(opt.preset)) {
    // addendum §A2.1. The released taps are the last 3 main layers (Flash 40..42 of 43, Pro 58..60
    // of 61); with --layers they stay the last 3 (all of them below 3 layers). The released Markov
    // ranks are Flash 256 and Pro 512; the tiny presets scale them down by 4 (64 / 128). The noise
    // id is the released 128799 where the vocabulary has it, else the last id.
    const bool pro = dims_of(opt.preset) == SynthPreset::pro || opt.preset == SynthPreset::tiny_0813;
    std::vector<int64_t> taps;
    for (int64_t l = std::max<int64_t>(0, d.layers - 3); l < d.layers; ++l) taps.push_back(l);
    int64_t rank = pro ? 512 : 256;
    if (dims_of(opt.preset) == SynthPreset::tiny) rank /= 4;
    j["dspark_block_size"] = 5;
    j["dspark_markov_rank"] = rank;
    j["dspark_noise_token_id"] = std::min<int64_t>(128799, d.vocab - 1);
    j["dspark_target_layer_ids"] = taps;
  }
  return finish_config(std::move(j), opt);
}

std::vector<SynthRecipe> synth_recipes(const ModelConfig& c, const std::vector<TensorSpec>& tensors, uint64_t seed) {
  using Kind = SynthRecipe::Kind;
  std::map<std::string, const TensorSpec*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  std::vector<SynthRecipe> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    SynthRecipe r;
    r.seed = derive_seed(seed, t.name);
    const std::string& n = t.name;
    const int64_t fan_in = t.shape.size() == 2 ? t.shape[1] : 1;
    const float inv_sqrt_fan_in = float(1.0 / std::sqrt(double(fan_in)));
    switch (t.dtype) {
      case DType::fp8_e4m3:
        // Codes ~ N(0, kFp8CodeStd^2); the E8M0 block scale sets the magnitude.
        r.kind = Kind::fp8_normal;
        break;
      case DType::fp4_e2m1:
        r.kind = Kind::fp4_normal;   // routed experts (spec §3.2)
        break;
      case DType::fp8_e8m0: {
        // Scale of `<name>.weight`: its fan-in is the row length.
        r.kind = Kind::e8m0_const;
        const std::string base = n.substr(0, n.size() - std::string_view(".scale").size());
        auto w = by_name.find(base + ".weight");
        int64_t w_fan_in = 1;
        if (w != by_name.end() && w->second->shape.size() == 2)
          w_fan_in = w->second->shape[1];
        r.code = fan_in_scale_code(w_fan_in);
        if (w != by_name.end() && w->second->dtype == DType::fp8_e4m3) r.code = uint8_t(r.code - kFp8CodeStdLog2);
        break;
      }
      case DType::bf16:
        r.kind = Kind::bf16_normal;
        if (ends_with(n, "norm.weight") || ends_with(n, "norm1.weight") || ends_with(n, "norm2.weight")) {
          r.mean = 1.0f;   // RMSNorm gains around 1 (norm1/norm2: the V4.1 vision blocks)
          r.stddev = 0.05f;
        } else if (ends_with(n, ".bias")) {
          r.stddev = 0.01f;   // the V4.1 vision tower's and aligner's linear biases: small
        } else if (n == "embed.weight") {
          r.stddev = 1.0f;   // streams start O(1)
        } else {
          r.stddev = inv_sqrt_fan_in;   // head, router gate, compressor wkv/wgate, weights_proj, ...
        }
        break;
      case DType::f32:
        r.kind = Kind::f32_normal;
        if (ends_with(n, "_fn")) {
          // hc mix = (x·fnᵀ)/rms(x) (spec §5.2.1): std 1/sqrt(fan_in) keeps it ~N(0,1) before scale.
          r.stddev = inv_sqrt_fan_in;
        } else if (ends_with(n, "_scale")) {
          r.mean = 0.5f;   // hc scales: moderate sigmoid/Sinkhorn arguments
          r.stddev = 0.05f;
        } else if (ends_with(n, "_base")) {
          r.stddev = 0.1f;
        } else if (ends_with(n, "attn_sink")) {
          r.stddev = 1.0f;   // moderate sink logits
        } else if (ends_with(n, "gate.bias") || ends_with(n, "gate.bias_vl")) {
          r.stddev = 0.01f;   // selection-only bias (V4.1: also the image-span one), small
        } else {
          r.stddev = 0.1f;   // compressor ape: small positional gate bias
        }
        break;
      case DType::i64:
        r.kind = Kind::expert_ids;   // gate.tid2eid
        r.n_experts = c.n_routed_experts;
        break;
      default:
        r.kind = Kind::f32_normal;   // not in the V4 inventory; keeps the switch total
        break;
    }
    out.push_back(r);
  }
  return out;
}

void synth_fill(const SynthRecipe& r, const TensorSpec& t, uint64_t offset, uint8_t* dst, size_t n) {
  // kSynthBlock is a multiple of every element size (and the tid2eid generator is row-addressed),
  // so blocks are independent and can be filled in parallel.
  const uint64_t tensor_bytes = t.nbytes();
  const uint64_t first = offset / kSynthBlock, last = (offset + n + kSynthBlock - 1) / kSynthBlock;
  const int64_t nblocks = int64_t(last - first);
#pragma omp parallel for schedule(dynamic, 1) if (nblocks > 1)
  for (int64_t k = 0; k < nblocks; ++k) {
    const uint64_t b = first + uint64_t(k);
    const uint64_t b_lo = b * kSynthBlock, b_hi = std::min(tensor_bytes, b_lo + kSynthBlock);
    const uint64_t lo = std::max(offset, b_lo), hi = std::min<uint64_t>(offset + n, b_hi);
    if (lo == b_lo && hi == b_hi) {
      fill_block(r, t, b, b_lo, dst + (lo - offset), size_t(hi - lo));
    } else {
      std::vector<uint8_t> whole(size_t(b_hi - b_lo));
      fill_block(r, t, b, b_lo, whole.data(), whole.size());
      std::memcpy(dst + (lo - offset), whole.data() + (lo - b_lo), size_t(hi - lo));
    }
  }
}

namespace {

// Writes a small file and records its sha256 for SHA256SUMS.
Status write_text(const fs::path& path, const std::string& text, std::vector<ChecksumEntry>* sums) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::io_error(path.string() + ": write failed");
  Sha256 h;
  h.update(text.data(), text.size());
  sums->push_back({h.hex_digest(), path.filename().string()});
  return Status::ok_status();
}

std::string shard_name(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
  return buf;
}

}  // namespace

Status synth_checkpoint(const SynthOptions& opt, const std::string& dir, SynthReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  DSV4_ASSIGN_OR_RETURN(std::string config_text, synth_config_json(opt));
  DSV4_ASSIGN_OR_RETURN(ModelConfig cfg, parse_config(config_text, "synth config"));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(dir + ": cannot create directory: " + ec.message());
  // Never mix shards of two checkpoints, and never delete weights the user did not ask to replace.
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".safetensors") continue;
    if (!opt.overwrite)
      return Status::invalid_argument(dir + ": already holds " + e.path().filename().string() +
                                      " (pass --force to replace the checkpoint there)");
    fs::remove(e.path(), ec);
    if (ec) return Status::io_error(e.path().string() + ": cannot remove: " + ec.message());
  }

  const auto tensors = expected_tensors(cfg);
  const auto recipes = synth_recipes(cfg, tensors, opt.seed);
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.nbytes();

  // Shards in inventory order: N = max(2, ceil(total / max_shard_bytes)) shards of about total/N
  // bytes each (at least two, like the fixtures, so multi-shard loading is always exercised); a
  // shard exceeds max_shard_bytes only if a single tensor does. In the DSpark releases the mtp.*
  // tensors fill the last shards on their own, so a target-only deployment can skip them
  // (addendum §A3.1: 0731's shards 46-48, one per stage at that size); here each stage starts a
  // shard of its own, and N and total count the main part only.
  auto stage_of = [&](const TensorSpec& t) {
    if (cfg.drafter() != io::DrafterKind::dspark || t.name.rfind("mtp.", 0) != 0) return std::string();
    return t.name.substr(0, t.name.find('.', 4) + 1);
  };
  uint64_t main_total = 0;
  for (const auto& t : tensors)
    if (stage_of(t).empty()) main_total += t.nbytes();
  const uint64_t max_shard = std::max<uint64_t>(1, opt.max_shard_bytes);
  const uint64_t n_target = std::max<uint64_t>(2, (main_total + max_shard - 1) / max_shard);
  const uint64_t target = std::max<uint64_t>(1, (main_total + n_target - 1) / n_target);
  // With expert_groups G, the main layers' routed experts move after the other main tensors, group
  // by group (group g: rank g's share of G ranks under mpirun), each group from a shard of its
  // own: then an expert-parallel rank maps the shared shards and its group's only.
  const int64_t G = opt.expert_groups, E = cfg.n_routed_experts;
  auto group_of = [&](const TensorSpec& t) -> int64_t {
    const size_t at = t.name.find(".ffn.experts.");
    if (G <= 0 || at == std::string::npos || !stage_of(t).empty()) return -1;
    const int64_t e = std::stoll(t.name.substr(at + 13));
    int64_t g = 0;
    while (g + 1 < G && E * (g + 1) / G <= e) ++g;   // expert e is in [E·g/G, E·(g+1)/G)
    return g;
  };
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto phase = [&](size_t i) { return stage_of(tensors[i]).empty() ? 1 + group_of(tensors[i]) : G + 1; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return phase(a) < phase(b); });
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const uint64_t nb = tensors[i].nbytes();
    const std::string stage = stage_of(tensors[i]);
    const bool new_stage =
        k > 0 && (stage != stage_of(tensors[order[k - 1]]) || group_of(tensors[i]) != group_of(tensors[order[k - 1]]));
    const bool over_target = stage.empty() && in_shard + nb > target && shards.size() < n_target;
    if (!shards.back().empty() && (new_stage || over_target || in_shard + nb > max_shard)) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += nb;
  }

  std::vector<ChecksumEntry> sums;
  DSV4_TRY(write_text(fs::path(dir) / "config.json", config_text, &sums));
  ojson gen;
  gen["_from_model_config"] = true;
  gen["bos_token_id"] = cfg.bos_token_id;
  gen["eos_token_id"] = cfg.eos_token_id;
  gen["do_sample"] = true;
  gen["temperature"] = 1.0;
  gen["top_p"] = 1.0;
  gen["transformers_version"] = "4.46.3";
  DSV4_TRY(write_text(fs::path(dir) / "generation_config.json", gen.dump(2) + "\n", &sums));
  if (cfg.architecture == io::Architecture::v41)
    DSV4_TRY(write_text(fs::path(dir) / model::kEngramTokenMapFile, synth_engram_token_map(cfg), &sums));

  ojson index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = ojson::object();
  for (size_t k = 0; k < shards.size(); ++k)
    for (size_t i : shards[k]) index["weight_map"][tensors[i].name] = shard_name(k, shards.size());
  DSV4_TRY(write_text(fs::path(dir) / "model.safetensors.index.json", index.dump(2) + "\n", &sums));

  for (size_t k = 0; k < shards.size(); ++k) {
    const auto ts = std::chrono::steady_clock::now();
    std::vector<TensorSpec> specs;
    uint64_t bytes = 0;
    for (size_t i : shards[k]) {
      specs.push_back(stored_form(tensors[i]));
      bytes += tensors[i].nbytes();
    }
    const std::string name = shard_name(k, shards.size());
    const auto& idx = shards[k];
    Sha256 sha;   // hashed while written: SHA256SUMS costs no second pass over the shard
    DSV4_TRY(write_safetensors_chunked(
        (fs::path(dir) / name).string(), specs, {{"format", "pt"}},
        [&](size_t i, uint64_t off, uint8_t* dst, size_t n) { synth_fill(recipes[idx[i]], tensors[idx[i]], off, dst, n); },
        [&](const uint8_t* b, size_t n) { sha.update(b, n); }));
    sums.push_back({sha.hex_digest(), name});
    if (opt.progress) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      std::fprintf(stderr, "synth: %s: %zu tensors, %.2f GiB in %.1f s (%.0f MiB/s)\n", name.c_str(), specs.size(),
                   double(bytes) / double(1ull << 30), s, double(bytes) / double(1 << 20) / std::max(s, 1e-9));
    }
  }

  bool tokenizer_copied = false;
  if (!opt.tokenizer_dir.empty()) {
    const fs::path src = opt.tokenizer_dir;
    if (fs::exists(src / "tokenizer.json") && fs::exists(src / "tokenizer_config.json")) {
      for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
        fs::copy_file(src / f, fs::path(dir) / f, fs::copy_options::overwrite_existing, ec);
        if (ec) return Status::io_error((fs::path(dir) / f).string() + ": cannot copy tokenizer: " + ec.message());
        DSV4_ASSIGN_OR_RETURN(std::string sha, sha256_file((fs::path(dir) / f).string()));
        sums.push_back({sha, f});
      }
      tokenizer_copied = true;
    } else if (opt.progress) {
      std::fprintf(stderr, "synth: note: no tokenizer at %s; checkpoint written without tokenizer files\n",
                   src.string().c_str());
    }
  }

  // SHA256SUMS, and the files recorded as verified so `run` on this directory starts at once.
  {
    std::ofstream out(fs::path(dir) / "SHA256SUMS", std::ios::binary | std::ios::trunc);
    out << format_sha256sums(sums);
    if (!out) return Status::io_error(dir + "/SHA256SUMS: write failed");
  }
  if (opt.remember_verified) {
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& e : sums) files.emplace_back((fs::path(dir) / e.file).string(), e.sha256);
    io::remember_verified(files);
  }

  if (report) {
    report->tensors = tensors.size();
    report->shards = shards.size();
    report->bytes = total;
    report->tokenizer_copied = tokenizer_copied;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return Status::ok_status();
}

}  // namespace dsv4::eval

// The complete tensor inventory a checkpoint must hold for a given config (spec §3.3–§3.5; for
// V4.1, v4.1 §3.3–§3.5 in inventory_v41.h): name, dtype and shape of every tensor, as one typed
// description per block. The loader validates the files against it, `dsv4 synth` writes exactly
// it and model::bind_weights binds its fields, so the three always agree with each other and with
// the spec. Field names are the checkpoint's.
#pragma once

#include <optional>
#include <vector>

#include "io/config.h"
#include "io/safetensors.h"

namespace dsv4::io {

// A matrix as stored (spec §3.2): "<name>.weight", plus the E8M0 "<name>.scale" of FP8 and FP4.
struct MatrixSpec {
  TensorSpec weight;
  std::optional<TensorSpec> scale;
};

// Mixing maps of one hyper-connection site (spec §5.2): "<site>_fn", "<site>_base", "<site>_scale".
struct HcSpec {
  TensorSpec fn, base, scale;
};

// A KV compressor (spec §5.5) pooling windows of m source tokens into entries of d dims; an
// overlapping one (CSA: c = 2) also pools the previous window.
struct CompressorSpec {
  MatrixSpec wkv, wgate;   // bf16 [c·d, D]
  TensorSpec ape;          // f32 [m, c·d]
  TensorSpec norm;         // bf16 [d]
  int64_t ratio = 0, dim = 0;
  bool overlap = false;
};

struct IndexerSpec {        // spec §5.6
  MatrixSpec wq_b;          // fp8 [Hi·Di, Rq]
  MatrixSpec weights_proj;  // bf16 [Hi, D]
  CompressorSpec compressor;
};

struct AttentionSpec {
  MatrixSpec wq_a, wq_b, wkv, wo_a, wo_b;
  TensorSpec q_norm, kv_norm, attn_sink;
  std::optional<CompressorSpec> compressor;   // CSA and HCA
  std::optional<IndexerSpec> indexer;         // CSA
};

struct ExpertSpec {
  MatrixSpec w1, w2, w3;   // gate, down, up
};

struct MoeSpec {
  MatrixSpec gate;                    // bf16 [E, D]
  std::optional<TensorSpec> tid2eid;  // hash-routed layers: i64 [V, K]
  std::optional<TensorSpec> bias;     // the other layers: f32 [E]
  ExpertSpec shared;
  std::vector<ExpertSpec> experts;
};

struct BlockSpec {
  int64_t layer = 0;                  // num_hidden_layers + s for "mtp.{s}." 
  LayerKind kind = LayerKind::swa;
  HcSpec hc_attn, hc_ffn;
  TensorSpec attn_norm, ffn_norm;
  AttentionSpec attn;
  MoeSpec ffn;
};

struct HeadSpec {
  HcSpec hc;        // hc_head_{fn,base,scale}
  TensorSpec norm;
};

struct MtpSpec {    // spec §3.5: "mtp.0." — a block plus its input projections and its head
  MatrixSpec e_proj, h_proj;
  TensorSpec enorm, hnorm;
  BlockSpec block;
  HeadSpec head;
};

// addendum §A3.3: the DSpark drafter, "mtp.0." .. "mtp.{NS-1}.". Each stage is a full SWA block
// with non-hash routing; stage 0 adds the conditioning projection, the last stage the head, the
// Markov head and the confidence head. There is no e_proj/h_proj/enorm/hnorm (addendum §A3.5),
// and embed/head are the target's (addendum §A3.4), so none is stored here.
struct DsparkSpec {
  MatrixSpec main_proj;            // fp8 [D, |T|·D] (stage 0)
  TensorSpec main_norm;            // bf16 [D] (stage 0)
  std::vector<BlockSpec> stages;   // NS blocks, layers L .. L+NS-1
  HeadSpec head;                   // last stage: norm + hc_head_{fn,base,scale}
  MatrixSpec markov_w1, markov_w2; // last stage: bf16 [V, r] (embedding / output head)
  MatrixSpec confidence_proj;      // last stage: bf16 [1, D + r], no bias
};

struct Inventory {
  TensorSpec embed;
  MatrixSpec head;
  HeadSpec final_head;
  std::vector<BlockSpec> blocks;   // the main layers
  std::optional<MtpSpec> mtp;      // preview with num_nextn_predict_layers == 1
  std::optional<DsparkSpec> dspark;   // DSpark revision (addendum §A3.3)
};

// REQUIRES: c.architecture == v4 (V4.1: v41_inventory).
Inventory model_inventory(const ModelConfig& c);

// Every tensor of the config's inventory in file order, with the element type and shape it holds
// (FP4 routed experts: fp4_e2m1 [rows, cols]). V4 (model_inventory): globals first, then the
// layers in order, then the MTP block and its own tensors (or the DSpark stages, each followed by
// the tensors only it holds). V4.1: v41_inventory's order.
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

// The dtype and shape a tensor has in a safetensors header. This is the one place where the
// official checkpoints' labelling of FP4 is spelled out: headers have no FP4 dtype, so fp4_e2m1
// [rows, cols] is stored as I8 [rows, cols/2] (spec §3.3). Every other tensor is its own form.
// Checkpoint::open reads headers through it and `dsv4 synth` writes them with it.
TensorSpec stored_form(const TensorSpec& t);

}  // namespace dsv4::io

// Internal to io: the tensor constructors both inventories (inventory.cpp for V4,
// inventory_v41.cpp for V4.1) declare their tensors with. Each created tensor is also appended to
// `flat` (when given), so the order an inventory builds its fields in is its file order.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/inventory.h"

namespace dsv4::io {

// Prefix of block `layer` ("layers.7.", or "mtp.{s}." for layer == num_hidden_layers + s).
inline std::string block_prefix(const ModelConfig& c, int64_t layer) {
  if (layer >= c.num_hidden_layers) return "mtp." + std::to_string(layer - c.num_hidden_layers) + ".";
  return "layers." + std::to_string(layer) + ".";
}

struct TensorBuilder {
  std::vector<TensorSpec>* flat;
  int64_t fp8_block;   // FP8 weight scale blocks: 128x128 in V4 (spec §3.2), 32x32 in V4.1 (v4.1 §3.2)

  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

  TensorSpec add(const std::string& name, DType t, std::vector<int64_t> shape) {
    TensorSpec s{name, t, std::move(shape)};
    if (flat) flat->push_back(s);
    return s;
  }
  MatrixSpec bf16(const std::string& name, int64_t rows, int64_t cols) {
    MatrixSpec m;
    m.weight = add(name + ".weight", DType::bf16, {rows, cols});
    return m;
  }
  // FP8 E4M3 matrix [rows, cols] + E8M0 scale per fp8_block x fp8_block block.
  MatrixSpec fp8(const std::string& name, int64_t rows, int64_t cols) {
    MatrixSpec m;
    m.weight = add(name + ".weight", DType::fp8_e4m3, {rows, cols});
    m.scale = add(name + ".scale", DType::fp8_e8m0, {ceil_div(rows, fp8_block), ceil_div(cols, fp8_block)});
    return m;
  }
  // FP4 E2M1 matrix [rows, cols] (stored as I8 [rows, cols/2], stored_form) + E8M0 scale per row
  // per 32 columns (spec §3.2, v4.1 §3.2).
  MatrixSpec fp4(const std::string& name, int64_t rows, int64_t cols) {
    MatrixSpec m;
    m.weight = add(name + ".weight", DType::fp4_e2m1, {rows, cols});
    m.scale = add(name + ".scale", DType::fp8_e8m0, {rows, cols / 32});
    return m;
  }
  // spec §5.2: a site mixes `mix` values from the n·D stream with `scales` scales.
  HcSpec hc(const std::string& site, int64_t mix, int64_t scales, int64_t stream_width) {
    HcSpec h;
    h.fn = add(site + "_fn", DType::f32, {mix, stream_width});
    h.base = add(site + "_base", DType::f32, {mix});
    h.scale = add(site + "_scale", DType::f32, {scales});
    return h;
  }
  // A SwiGLU expert [I, D] / [D, I] / [I, D]: FP4 (routed) or FP8 (shared, or FP8 releases).
  ExpertSpec expert(const std::string& p, int64_t D, int64_t I, bool fp4_weights) {
    ExpertSpec e;
    if (fp4_weights) {
      e.w1 = fp4(p + "w1", I, D);
      e.w2 = fp4(p + "w2", D, I);
      e.w3 = fp4(p + "w3", I, D);
    } else {
      e.w1 = fp8(p + "w1", I, D);
      e.w2 = fp8(p + "w2", D, I);
      e.w3 = fp8(p + "w3", I, D);
    }
    return e;
  }
};

}  // namespace dsv4::io

#include "eval/conformance.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "kernels/cpu/matmul.h"
#include "model/block_probe.h"
#include "model/forward.h"
#include "runtime/numa_placement.h"
#include "runtime/world_engine.h"

namespace dsv4::eval {

using nlohmann::json;

namespace {

// A reference tensor converted to f32 (or i32 for ids).
struct RefTensor {
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int32_t> i;
  std::vector<uint16_t> bf16;   // exact bits when the reference stored bf16
};

// What a reference tensor must hold (fixture README): token ids and lengths are I32, logits and
// hidden streams F32 or BF16; `rank` dimensions, each at least 1.
enum class RefKind { ids, values };

Result<RefTensor> read_ref(const io::SafetensorsHeader& h, const std::string& name, RefKind kind, size_t rank) {
  for (const auto& t : h.tensors) {
    if (t.name != name) continue;
    const bool ids = t.dtype == DType::i32, values = t.dtype == DType::f32 || t.dtype == DType::bf16;
    if (kind == RefKind::ids ? !ids : !values)
      return Status::invalid_argument("reference tensor '" + name + "' has dtype " + dtype_name(t.dtype) + ", expected " +
                                      (kind == RefKind::ids ? "I32" : "F32 or BF16"));
    if (t.shape.size() != rank || t.numel() == 0)
      return Status::invalid_argument("reference tensor '" + name + "' must have " + std::to_string(rank) +
                                      " non-empty dimension(s)");
    RefTensor r;
    r.shape = t.shape;
    const int64_t n = t.numel();
    if (t.dtype == DType::f32) {
      r.f.resize(size_t(n));
      std::memcpy(r.f.data(), t.data, size_t(n) * 4);
    } else if (t.dtype == DType::bf16) {
      r.bf16.resize(size_t(n));
      std::memcpy(r.bf16.data(), t.data, size_t(n) * 2);
      r.f.resize(size_t(n));
      for (int64_t k = 0; k < n; ++k) r.f[size_t(k)] = bf16_to_f32(r.bf16[size_t(k)]);
    } else {
      r.i.resize(size_t(n));
      std::memcpy(r.i.data(), t.data, size_t(n) * 4);
    }
    return r;
  }
  return Status::not_found("reference tensor '" + name + "' is missing");
}

bool has_ref(const io::SafetensorsHeader& h, const std::string& name) {
  for (const auto& t : h.tensors) if (t.name == name) return true;
  return false;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = size_t(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

// Statistical comparison of logit rows (fixture README, "emulating_engine").
json compare_logits(const float* ours, const float* ref, int64_t rows, int64_t V, const json& tol) {
  double sum_abs = 0;
  int64_t top1 = 0;
  std::vector<double> row_max(static_cast<size_t>(rows));
  double max_abs = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double rm = 0;
    int64_t a = 0, b = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double d = std::fabs(double(ours[r * V + v]) - double(ref[r * V + v]));
      sum_abs += d;
      rm = std::max(rm, d);
      if (ours[r * V + v] > ours[r * V + a]) a = v;
      if (ref[r * V + v] > ref[r * V + b]) b = v;
    }
    row_max[size_t(r)] = rm;
    max_abs = std::max(max_abs, rm);
    top1 += (a == b);
  }
  json out;
  out["rows"] = rows;
  out["mean_abs"] = sum_abs / double(rows * V);
  out["median_row_max_abs"] = quantile(row_max, 0.5);
  out["p90_row_max_abs"] = quantile(row_max, 0.9);
  out["max_abs"] = max_abs;
  out["top1_agreement"] = double(top1) / double(rows);
  // Without tolerances nothing is checked, so nothing passes.
  const bool have_tol = tol.is_object() && !tol.empty();
  if (!have_tol) out["tolerances"] = "missing";
  bool pass = have_tol;
  if (have_tol) {
    pass = out["mean_abs"].get<double>() <= tol.value("mean_abs", 1e9) &&
           out["median_row_max_abs"].get<double>() <= tol.value("median_row_max_abs", 1e9) &&
           out["p90_row_max_abs"].get<double>() <= tol.value("p90_row_max_abs", 1e9) &&
           out["top1_agreement"].get<double>() >= tol.value("top1_agreement_min", 0.0);
  }
  out["pass"] = pass;
  return out;
}

// Prefill of tokens [0, n) from a fresh state in chunks; all rows' logits into `logits`.
void prefill_logits(const model::Model& m, model::SequenceState& seq, const int32_t* tokens, int64_t n,
                    int64_t chunk, std::vector<float>& logits, model::Streams* final_streams) {
  model::Scratch scratch;
  const int64_t V = m.cfg.vocab_size, W = model::stream_width(m.cfg);
  logits.resize(size_t(n * V));
  if (final_streams) final_streams->resize(size_t(n * W));
  if (chunk <= 0) chunk = n;
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t len = std::min(chunk, n - s);
    model::Batch batch;
    batch.add(&seq, tokens + s, len, seq.pos);
    scratch.begin_step();
    model::Streams X(size_t(len * W));
    model::forward_streams(m, batch, X.data(), scratch);
    std::vector<int64_t> rows(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) rows[size_t(i)] = i;
    model::head_logits(m, m.w.final_head, X.data(), rows, &logits[size_t(s * V)], scratch);
    if (final_streams) std::copy(X.begin(), X.end(), final_streams->begin() + s * W);
  }
}

Result<json> load_tolerances(const std::string& reference_path) {
  const auto path = std::filesystem::path(reference_path).parent_path() / "reference.json";
  std::ifstream in(path);
  if (!in) return json::object();   // no tolerances: figures only, and the verdict is false
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::corrupt_data(path.string() + ": not a JSON object");
  json tol = j.value("suggested_tolerances", json::object());
  // The sections and bounds read above; each must have the right type (a wrong one is an error
  // here, not an exception later).
  const std::pair<const char*, std::vector<const char*>> known[] = {
      {"emulating_engine", {"mean_abs", "median_row_max_abs", "p90_row_max_abs", "top1_agreement_min"}},
      {"teacher_forced_per_layer", {"elements_bitwise_equal_min", "rel_rms_max", "max_abs_max"}}};
  if (!tol.is_object()) return Status::corrupt_data(path.string() + ": suggested_tolerances is not an object");
  for (const auto& [section, keys] : known) {
    if (!tol.contains(section)) continue;
    if (!tol[section].is_object())
      return Status::corrupt_data(path.string() + ": suggested_tolerances." + section + " is not an object");
    for (const char* key : keys)
      if (tol[section].contains(key) && !tol[section][key].is_number())
        return Status::corrupt_data(path.string() + ": suggested_tolerances." + section + "." + key + " is not a number");
  }
  return tol;
}

}  // namespace

Result<json> score_against_reference(const ScoreOptions& opt) {
  const kernels::RestoreMatmulImpl restore;
  if (opt.reference_kernels) kernels::select_matmul_impl(kernels::MatmulImpl::reference);
  io::NodeCopy copy;
  if (opt.numa && !opt.world) {
    DSV4_ASSIGN_OR_RETURN(copy, runtime::numa_node_copy(opt.model_dir));
  }
  DSV4_ASSIGN_OR_RETURN(auto model, opt.world ? runtime::load_model_on_world(*opt.world, opt.model_dir, false, opt.numa)
                                               : model::load_model(opt.model_dir, {}, copy));
  const model::Model& m = *model;
  DSV4_ASSIGN_OR_RETURN(auto ref, io::open_safetensors(opt.reference_path));
  DSV4_ASSIGN_OR_RETURN(json tol, load_tolerances(opt.reference_path));
  const io::SafetensorsHeader& h = ref.header;
  const int64_t V = m.cfg.vocab_size, D = m.cfg.hidden_size, nh = m.cfg.hc_mult, L = m.cfg.num_hidden_layers;

  DSV4_ASSIGN_OR_RETURN(RefTensor tokens, read_ref(h, "tokens", RefKind::ids, 1));
  const int64_t T = int64_t(tokens.i.size());
  for (int32_t t : tokens.i)
    if (t < 0 || t >= V) return Status::invalid_argument("reference token id out of the model's vocabulary");

  json report;
  report["model"] = opt.model_dir;
  report["reference"] = opt.reference_path;
  report["chunk"] = opt.chunk;
  report["kernels"] = kernels::matmul_impl_name(kernels::active_matmul_impl());
  report["tokens"] = T;
  bool pass = true;

  // 1. Teacher-forced per layer on the reference's hidden streams.
  std::optional<RefTensor> hid;
  if (has_ref(h, "prefill_hidden")) {
    // Per-layer streams of V4's blocks; V4.1's carry the lagged pre as well (v4.1 §5.2.2), and no
    // V4.1 reference dumps exist to define their layout.
    if (m.cfg.architecture == io::Architecture::v41)
      return Status::unsupported("score: teacher-forced layers (prefill_hidden) are not defined for V4.1; use a "
                                 "reference with prefill logits only");
    DSV4_ASSIGN_OR_RETURN(hid, read_ref(h, "prefill_hidden", RefKind::values, 4));
    if (hid->shape[0] != L + 1 || hid->shape[1] > T || hid->shape[2] != nh || hid->shape[3] != D || hid->bf16.empty())
      return Status::invalid_argument("prefill_hidden must be BF16 [num_hidden_layers + 1, N <= tokens, hc_mult, hidden]");
    const int64_t N = hid->shape[1];
    const json tf_tol = tol.value("teacher_forced_per_layer", json::object());
    json layers = json::array();
    const int64_t stride = N * nh * D;
    model::Scratch scratch;
    std::optional<model::BlockProbe> probe;
    if (opt.dump_layer >= 0) probe.emplace(opt.dump_layer, opt.dump_pos0, opt.dump_pos1);
    for (int64_t l = 0; l < L; ++l) {
      scratch.probe = probe && probe->watches(m.w.blocks[size_t(l)].layer) ? &*probe : nullptr;
      model::SequenceState seq = model::make_sequence_state(m.cfg);
      model::Streams X(hid->f.begin() + l * stride, hid->f.begin() + (l + 1) * stride);
      const int64_t chunk = opt.chunk > 0 ? opt.chunk : N;
      model::Streams out;
      for (int64_t s = 0; s < N; s += chunk) {
        const int64_t len = std::min(chunk, N - s);
        model::Batch batch;
        batch.add(&seq, tokens.i.data() + s, len, s);
        model::Streams Xc(X.begin() + s * nh * D, X.begin() + (s + len) * nh * D);
        scratch.begin_step();
        model::run_block(m, m.w.blocks[size_t(l)], batch, Xc.data(), scratch);
        out.insert(out.end(), Xc.begin(), Xc.end());
      }
      const uint16_t* refb = hid->bf16.data() + (l + 1) * stride;
      if (scratch.probe)
        for (int64_t t = 0; t < N; ++t)
          scratch.probe->record_row("ref.out", t, nh * D, hid->f.data() + (l + 1) * stride + t * nh * D);
      int64_t equal = 0;
      double ss_d = 0, ss_r = 0, max_abs = 0;
      for (int64_t k = 0; k < stride; ++k) {
        const float r = bf16_to_f32(refb[k]);
        equal += (f32_to_bf16(out[size_t(k)]) == refb[k]);
        const double d = double(out[size_t(k)]) - double(r);
        ss_d += d * d;
        ss_r += double(r) * r;
        max_abs = std::max(max_abs, std::fabs(d));
      }
      json lj;
      lj["layer"] = l;
      lj["elements_bitwise_equal"] = double(equal) / double(stride);
      lj["rel_rms"] = std::sqrt(ss_d / std::max(ss_r, 1e-30));
      lj["max_abs"] = max_abs;
      const bool ok = !tf_tol.empty() && lj["elements_bitwise_equal"].get<double>() >= tf_tol.value("elements_bitwise_equal_min", 0.0) &&
                      lj["rel_rms"].get<double>() <= tf_tol.value("rel_rms_max", 1e9) &&
                      max_abs <= tf_tol.value("max_abs_max", 1e9);
      lj["pass"] = ok;
      pass = pass && ok;
      layers.push_back(lj);
    }
    report["teacher_forced"] = layers;
    scratch.probe = nullptr;
    if (probe) DSV4_TRY(probe->write(opt.dump_path));
  }

  const json e2e_tol = tol.value("emulating_engine", json::object());
  // 2. End-to-end prefill logits.
  model::Streams final_streams;
  if (has_ref(h, "prefill_logits")) {
    DSV4_ASSIGN_OR_RETURN(RefTensor pl, read_ref(h, "prefill_logits", RefKind::values, 2));
    if (pl.shape.size() != 2 || pl.shape[0] != T || pl.shape[1] != V)
      return Status::invalid_argument("prefill_logits shape does not match tokens x vocab");
    model::SequenceState seq = model::make_sequence_state(m.cfg);
    std::vector<float> logits;
    prefill_logits(m, seq, tokens.i.data(), T, opt.chunk, logits, &final_streams);
    json pj = compare_logits(logits.data(), pl.f.data(), T, V, e2e_tol);
    // Rows before the first rounding flip match almost exactly (fixture README, exact_prefix).
    int64_t exact_rows = 0;
    for (; exact_rows < T; ++exact_rows) {
      double rm = 0;
      for (int64_t v = 0; v < V; ++v)
        rm = std::max(rm, std::fabs(double(logits[size_t(exact_rows * V + v)]) - pl.f[size_t(exact_rows * V + v)]));
      if (rm > 1e-3) break;
    }
    pj["exact_prefix_rows"] = exact_rows;
    pass = pass && pj["pass"].get<bool>();
    report["prefill"] = pj;
  }

  // 3. P-token prefill, then single-token decode steps.
  if (has_ref(h, "decode_logits") && has_ref(h, "decode_prefix_len")) {
    DSV4_ASSIGN_OR_RETURN(RefTensor dl, read_ref(h, "decode_logits", RefKind::values, 2));
    DSV4_ASSIGN_OR_RETURN(RefTensor pp, read_ref(h, "decode_prefix_len", RefKind::ids, 1));
    const int64_t P = pp.i[0], steps = dl.shape[0];
    if (P <= 0 || P + steps > T || dl.shape[1] != V)
      return Status::invalid_argument("decode reference tensors are inconsistent");
    model::SequenceState seq = model::make_sequence_state(m.cfg);
    std::vector<float> logits;
    prefill_logits(m, seq, tokens.i.data(), P, opt.chunk, logits, nullptr);
    std::vector<float> dec(size_t(steps * V));
    for (int64_t j = 0; j < steps; ++j) {
      std::vector<float> one;
      prefill_logits(m, seq, tokens.i.data() + P + j, 1, 1, one, nullptr);
      std::copy(one.begin(), one.end(), dec.begin() + j * V);
    }
    json dj = compare_logits(dec.data(), dl.f.data(), steps, V, e2e_tol);
    dj["prefix_len"] = P;
    pass = pass && dj["pass"].get<bool>();
    report["decode"] = dj;
  }

  // 4. MTP, teacher-forced on the reference's final streams (prefill_hidden[L]).
  if (m.w.has_mtp && has_ref(h, "mtp_logits") && hid) {
    DSV4_ASSIGN_OR_RETURN(RefTensor ml, read_ref(h, "mtp_logits", RefKind::values, 2));
    // Row i predicts token i + 2 from the streams at i and token i + 1: at most T - 1 rows.
    if (ml.shape[0] > T - 1 || ml.shape[1] != V)
      return Status::invalid_argument("mtp_logits must be [rows <= tokens - 1, vocab]");
    const int64_t N = std::min<int64_t>(hid->shape[1], ml.shape[0]);
    const int64_t stride = hid->shape[1] * nh * D;
    model::SequenceState seq = model::make_sequence_state(m.cfg);
    std::vector<float> logits(size_t(N * V));
    model::Scratch scratch;
    scratch.begin_step();
    model::mtp_forward(m, seq, hid->f.data() + L * stride, tokens.i.data() + 1, N, N, logits.data(), scratch);
    json mj = compare_logits(logits.data(), ml.f.data(), N, V, e2e_tol);
    pass = pass && mj["pass"].get<bool>();
    report["mtp"] = mj;
  }
  report["pass"] = pass;
  return report;
}

}  // namespace dsv4::eval

#include "eval/weight_traffic.h"

#include <string_view>

#include "io/inventory.h"

namespace dsv4::eval {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

WeightTraffic weight_bytes_per_token(const io::Checkpoint& ck) {
  const io::ModelConfig& c = ck.config();
  WeightTraffic t;
  uint64_t routed_all = 0;   // every routed expert of every main layer
  // Names come from the inventory (spec §3.3-§3.5), sizes from the files.
  for (const io::TensorSpec& spec : io::expected_tensors(c)) {
    const std::string_view name = spec.name;
    // A tensor in a shard this process did not open (another rank's expert under mpirun) by its
    // inventory dtype and shape: the ranks that open it check that the file has those.
    const io::TensorEntry* entry = ck.find(spec.name);
    const uint64_t bytes = entry ? entry->nbytes() : spec.nbytes();
    if (starts_with(name, "mtp.")) continue;   // the MTP block does not run in plain decode
    if (starts_with(name, "vision.")) continue;   // V4.1's tower: nothing runs it for text (v4.1 §12)
    if (name == "embed.weight") {
      t.other += bytes / uint64_t(c.vocab_size);   // one row [D] of [V, D]
    } else if (name == "head.weight" || name == "norm.weight" || starts_with(name, "hc_head_")) {
      t.head += bytes;
    } else if (starts_with(name, "layers.")) {
      const std::string_view rest = name.substr(name.find('.', 7) + 1);   // after "layers.N."
      if (starts_with(rest, "attn.")) t.attention += bytes;
      else if (starts_with(rest, "ffn.experts.")) routed_all += bytes;
      else if (starts_with(rest, "ffn.shared_experts.")) t.shared += bytes;
      else if (rest == "ffn.gate.tid2eid") t.other += bytes / uint64_t(c.vocab_size);   // row tid2eid[tok]
      // V4.1 Engram (v4.1 §5.3): each token looks up one row of the layer's table (FP8 rows and
      // their E8M0 scales) per hash column; the projections are read whole.
      else if (starts_with(rest, "engram.embed.")) t.engram += bytes / uint64_t(spec.shape[0]) * uint64_t(c.v41.engram.columns());
      else if (starts_with(rest, "engram.")) t.engram += bytes;
      else t.other += bytes;
    } else {
      t.other += bytes;
    }
  }
  // Experts of one layer are equal in size, so K of E is exactly the K/E share of the total.
  t.experts = routed_all / uint64_t(c.n_routed_experts) * uint64_t(c.num_experts_per_tok);
  return t;
}

}  // namespace dsv4::eval

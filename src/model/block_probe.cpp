#include "model/block_probe.h"

#include <cstring>

#include "core/status.h"
#include "io/safetensors.h"

namespace dsv4::model {

void BlockProbe::record(const std::string& name, const int64_t* positions, int64_t rows, int64_t width,
                        const float* data) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t r = 0; r < rows; ++r) {
    if (positions[r] < pos0_ || positions[r] >= pos1_) continue;
    Series& s = series_[name];
    DSV4_CHECK(s.width == 0 || s.width == width);   // one width per series: callers pad variable-length rows
    s.width = width;
    s.rows[positions[r]].assign(data + r * width, data + (r + 1) * width);
  }
}

Status BlockProbe::write(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<io::TensorSpec> specs;
  std::vector<const Series*> of_spec;
  for (const auto& [name, s] : series_) {
    const int64_t n = int64_t(s.rows.size());
    specs.push_back({name, DType::f32, {n, s.width}});
    of_spec.push_back(&s);
    specs.push_back({name + ".positions", DType::i64, {n}});
    of_spec.push_back(&s);
  }
  const std::map<std::string, std::string> meta = {
      {"layer", std::to_string(layer_)}, {"positions", std::to_string(pos0_) + ".." + std::to_string(pos1_ - 1)}};
  return io::write_safetensors(path, specs, meta, [&](size_t i, std::vector<uint8_t>& out) {
    const Series& s = *of_spec[i];
    const bool positions = specs[i].dtype == DType::i64;
    out.resize(specs[i].nbytes());
    size_t off = 0;
    for (const auto& [pos, row] : s.rows) {
      if (positions) {
        std::memcpy(out.data() + off, &pos, sizeof pos);
        off += sizeof pos;
      } else {
        std::memcpy(out.data() + off, row.data(), row.size() * sizeof(float));
        off += row.size() * sizeof(float);
      }
    }
  });
}

}  // namespace dsv4::model

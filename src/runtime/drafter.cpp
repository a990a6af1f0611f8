#include "runtime/drafter.h"

#include <algorithm>

namespace dsv4::runtime {

void TargetRows::assign(const float* rows, const int32_t* toks, int64_t pos0, int64_t count, int64_t width) {
  data.assign(rows, rows + count * width);
  tokens.assign(toks, toks + count);
  pos = pos0;
  n = count;
}

void TargetRows::append(const float* rows, const int32_t* toks, int64_t pos0, int64_t count, int64_t width,
                        int64_t cap) {
  DSV4_CHECK(n == 0 || pos + n == pos0);
  const int64_t fresh = std::min(count, cap), skip = count - fresh;   // new rows that stay
  const int64_t drop = n - std::min(n, cap - fresh);                   // held rows pushed out
  data.erase(data.begin(), data.begin() + drop * width);
  tokens.erase(tokens.begin(), tokens.begin() + drop);
  n -= drop;
  pos = n > 0 ? pos + drop : pos0 + skip;
  data.insert(data.end(), rows + skip * width, rows + count * width);
  tokens.insert(tokens.end(), toks + skip, toks + count);
  n += fresh;
}

size_t DraftState::memory_bytes() const {
  return (waiting.data.capacity() + staged.data.capacity()) * sizeof(float) +
         (waiting.tokens.capacity() + staged.tokens.capacity()) * sizeof(int32_t) + dspark.memory_bytes();
}

std::unique_ptr<Drafter> make_mtp_drafter(const model::Model& m);
std::unique_ptr<Drafter> make_dspark_drafter(const model::Model& m);

std::unique_ptr<Drafter> make_drafter(const model::Model& m) {
  if (m.w.has_dspark) return make_dspark_drafter(m);
  if (m.w.has_mtp) return make_mtp_drafter(m);
  return nullptr;
}

}  // namespace dsv4::runtime

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

void write_draft_state(const DraftState& ds, ByteWriter& w) {
  DSV4_CHECK(ds.staged.n == 0);
  w.put<int64_t>(ds.waiting.pos);
  w.put<int64_t>(ds.waiting.n);
  w.put_array<int32_t>(ds.waiting.tokens);
  w.put_array<float>(ds.waiting.data);
  w.put<int64_t>(ds.dspark.pos);
  w.put_array<uint16_t>(ds.dspark.ring);
}

Status read_draft_state(ByteReader& r, int64_t row_width, int64_t max_waiting, int64_t vocab, int64_t seq_pos,
                        DraftState& ds) {
  TargetRows& w = ds.waiting;
  DSV4_TRY(r.get(&w.pos));
  DSV4_TRY(r.get(&w.n));
  if (w.n < 0 || w.n > max_waiting || w.pos < 0 || (w.n > 0 && w.pos + w.n != seq_pos))
    return Status::corrupt_data(r.what() + ": the drafter's waiting rows do not end at the sequence's position");
  DSV4_TRY(r.get_array(&w.tokens, uint64_t(w.n), "drafter tokens"));
  for (int32_t t : w.tokens)
    if (t < 0 || t >= vocab) return Status::corrupt_data(r.what() + ": a drafter token is outside the vocabulary");
  DSV4_TRY(r.get_array(&w.data, uint64_t(w.n * row_width), "drafter rows"));
  DSV4_TRY(r.get(&ds.dspark.pos));
  if (ds.dspark.pos != (ds.dspark.stages > 0 ? seq_pos : 0))
    return Status::corrupt_data(r.what() + ": the DSpark rings are not at the sequence's position");
  return r.get_array(&ds.dspark.ring, uint64_t(ds.dspark.ring.size()), "DSpark rings");
}

std::unique_ptr<Drafter> make_mtp_drafter(const model::Model& m);
std::unique_ptr<Drafter> make_dspark_drafter(const model::Model& m);

std::unique_ptr<Drafter> make_drafter(const model::Model& m) {
  if (m.w.has_dspark) return make_dspark_drafter(m);
  if (m.w.has_mtp) return make_mtp_drafter(m);
  return nullptr;
}

}  // namespace dsv4::runtime

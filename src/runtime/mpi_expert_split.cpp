#include "runtime/mpi_expert_split.h"

#include <bit>
#include <chrono>

#include "core/status.h"

namespace dsv4::runtime {

std::pair<int64_t, int64_t> expert_range(int64_t n_experts, int rank, int size) {
  return {n_experts * rank / size, n_experts * (rank + 1) / size};
}

MpiExpertSplit::MpiExpertSplit(const World& world, int64_t n_experts) : world_(world) {
  for (int r = 0; r < world.size(); ++r) ranges_.push_back(expert_range(n_experts, r, world.size()));
  std::tie(first_, last_) = ranges_[size_t(world.rank())];
  counts_.resize(size_t(world.size()));
  displs_.resize(size_t(world.size()));
}

MpiExpertSplit::~MpiExpertSplit() {
  const auto mpi = world_.lock();
  if (row_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&row_type_);
}

void MpiExpertSplit::exchange(float* pair_y, const int64_t* start, int64_t n_experts, int64_t rows, int64_t D) {
  const auto t0 = std::chrono::steady_clock::now();
  if (D != row_width_) {   // one row is the unit of the counts, so they stay small ints at any prefill length
    const auto mpi = world_.lock();
    if (row_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&row_type_);
    MPI_Type_contiguous(int(D), MPI_UINT16_T, &row_type_);
    MPI_Type_commit(&row_type_);
    row_width_ = D;
  }
  for (size_t r = 0; r < ranges_.size(); ++r) {
    counts_[r] = int(start[ranges_[r].second] - start[ranges_[r].first]);
    displs_[r] = int(start[ranges_[r].first]);
  }
  const int64_t pairs = start[n_experts], own0 = start[first_], own1 = start[last_];
  rows_.resize(size_t(pairs * D));
  // The rows travel as bf16, half the bytes of f32 and exactly the same values: a routed expert's
  // output is a LinearKind::quantized product, rounded to bf16 (model/linear.h, spec §5.10), so the
  // low 16 bits of each f32 are zero. Checked, since bit-identity rests on it.
  uint32_t low_bits = 0;
  for (int64_t i = own0 * D; i < own1 * D; ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(pair_y[i]);
    low_bits |= bits & 0xffffu;
    rows_[size_t(i)] = uint16_t(bits >> 16);
  }
  DSV4_CHECK(low_bits == 0);
  MPI_Request req;
  {
    const auto mpi = world_.lock();
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows_.data(), counts_.data(), displs_.data(), row_type_,
                    world_.comm(), &req);
  }
  world_.wait(req, "the expert exchange", World::Deadline::step);
  for (int64_t i = 0; i < pairs * D; ++i)
    if (i < own0 * D || i >= own1 * D) pair_y[i] = std::bit_cast<float>(uint32_t(rows_[size_t(i)]) << 16);
  ExchangeTally& t = rows == 1 ? counters_.one_row : counters_.many_rows;
  t.calls += 1;
  t.rows += rows;
  t.bytes_in += double((pairs - (own1 - own0)) * D * 2);
  t.bytes_out += double((own1 - own0) * D * 2 * (world_.size() - 1));
  t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace dsv4::runtime

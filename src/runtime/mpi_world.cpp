#include "runtime/mpi_world.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace dsv4::runtime {

namespace {

// The variables a launcher sets in each process it starts: Open MPI's mpirun, then the PMI and
// PMIx conventions of the others (MPICH's hydra, Slurm's srun).
bool started_by_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// How long finish() waits for the other ranks: they end within milliseconds of each other when
// all is well (rank 0's last call has returned on every rank), so a rank still missing after this
// is working or waiting on something that will not come.
constexpr auto kEndWait = std::chrono::seconds(5);

}  // namespace

Result<std::unique_ptr<World>> World::join(int* argc, char*** argv) {
  if (!started_by_launcher()) return std::unique_ptr<World>();
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return Status::internal("MPI_Init_thread failed");
  std::unique_ptr<World> w(new World());
  if (provided < MPI_THREAD_SERIALIZED)
    return Status::unsupported("this MPI library does not support MPI_THREAD_SERIALIZED (serve calls MPI from its "
                               "inference thread)");
  MPI_Comm_rank(MPI_COMM_WORLD, &w->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w->size_);
  MPI_Comm_dup(MPI_COMM_WORLD, &w->comm_);
  MPI_Comm_dup(MPI_COMM_WORLD, &w->exit_comm_);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(host, &len);
  w->host_.assign(host, size_t(len));
  // Every rank's host, for messages about any of them.
  std::vector<char> all(size_t(w->size_) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, w->comm_);
  for (int r = 0; r < w->size_; ++r) w->hosts_.emplace_back(all.data() + size_t(r) * MPI_MAX_PROCESSOR_NAME);
  // Rank 0 prints the command's results; the others would print the same (score) or nothing useful.
  if (w->rank_ > 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
    return Status::io_error("cannot send stdout to /dev/null on " + w->name(w->rank_));
  return w;
}

World::~World() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (exit_comm_ != MPI_COMM_NULL) MPI_Comm_free(&exit_comm_);
  MPI_Finalize();
}

std::string World::name(int rank) const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size_) + " (host " + hosts_[size_t(rank)] + ")";
}

Status World::agree(const Status& mine) const {
  const int failed = mine.ok() ? 0 : 1;
  std::vector<int> all(static_cast<size_t>(size_));
  MPI_Allgather(&failed, 1, MPI_INT, all.data(), 1, MPI_INT, comm_);
  const int first = int(std::find(all.begin(), all.end(), 1) - all.begin());
  if (first == size_) return Status::ok_status();
  int code = int(mine.code());
  std::string message = rank_ == first ? mine.message() : std::string();
  int64_t len = int64_t(message.size());
  MPI_Bcast(&code, 1, MPI_INT, first, comm_);
  MPI_Bcast(&len, 1, MPI_INT64_T, first, comm_);
  message.resize(size_t(len));
  MPI_Bcast(message.data(), int(len), MPI_CHAR, first, comm_);
  return Status(StatusCode(code), name(first) + ": " + message);
}

void World::broadcast(std::vector<int64_t>& words) const {
  int64_t n = int64_t(words.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, comm_);
  words.resize(size_t(n));
  MPI_Bcast(words.data(), int(n), MPI_INT64_T, 0, comm_);
}

int64_t World::broadcast(int64_t value) const {
  MPI_Bcast(&value, 1, MPI_INT64_T, 0, comm_);
  return value;
}

std::vector<double> World::gather(const std::vector<double>& mine) const {
  std::vector<double> all(mine.size() * size_t(size_));
  MPI_Gather(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), int(mine.size()), MPI_DOUBLE, 0, comm_);
  return all;
}

int World::finish(int exit_status) {
  MPI_Request done;
  MPI_Ibarrier(exit_comm_, &done);
  const auto deadline = std::chrono::steady_clock::now() + kEndWait;
  int ended = 0;
  while (MPI_Test(&done, &ended, MPI_STATUS_IGNORE) == MPI_SUCCESS && !ended &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (ended) return exit_status;
  std::fprintf(stderr, "dsv4: %s ended (exit status %d) while other ranks are still working: ending the job\n",
               name(rank_).c_str(), exit_status);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_status != 0 ? exit_status : 1);
  return exit_status;   // not reached: MPI_Abort ends every process of the job
}

void World::exit(int exit_status) {
  const int status = finish(exit_status);
  std::fflush(stdout);
  MPI_Comm_free(&comm_);
  MPI_Comm_free(&exit_comm_);
  MPI_Finalize();
  std::exit(status);
}

}  // namespace dsv4::runtime

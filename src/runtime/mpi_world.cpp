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

// The roll call (World::wait): how long the caller waits for the answers of the ranks that are
// alive (their heartbeat answers within kHeartbeat), and how long a rank that has been called
// waits for the caller to end the job before it ends it itself.
constexpr auto kRollCall = std::chrono::seconds(2);
constexpr auto kCalledWait = std::chrono::seconds(10);
constexpr auto kHeartbeat = std::chrono::milliseconds(50);
// The other ranks' deadline is this much later than rank 0's, so that when rank 0 is alive it is
// the one that calls the roll and reports (one message).
constexpr double kFollowerGrace = 2;
// How long a wait spins (MPI_Test, then yield) before it sleeps between polls: an exchange
// completes in microseconds to milliseconds; a follower waiting for rank 0's next call may wait
// for hours, and should not hold a core meanwhile.
constexpr auto kSpin = std::chrono::milliseconds(50);
constexpr auto kPollSleep = std::chrono::microseconds(500);

// kCall ends the job after the roll; kCheck only asks. Both are answered with kAnswer, whose
// payload is never read (a constant, so that it outlives the nonblocking send).
enum RollTag : int { kCall = 1, kAnswer = 2, kCheck = 3 };
const int kAnswerPayload = 0;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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
  MPI_Comm_dup(MPI_COMM_WORLD, &w->roll_comm_);
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
  if (w->size_ > 1) w->heartbeat_ = std::thread(&World::heartbeat, w.get());
  return w;
}

World::~World() {
  stop_heartbeat();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (exit_comm_ != MPI_COMM_NULL) MPI_Comm_free(&exit_comm_);
  if (roll_comm_ != MPI_COMM_NULL) MPI_Comm_free(&roll_comm_);
  MPI_Finalize();
}

std::string World::name(int rank) const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size_) + " (host " + hosts_[size_t(rank)] + ")";
}

void World::heartbeat() {
  std::unique_lock<std::mutex> stop(heartbeat_mu_);
  while (!heartbeat_cv_.wait_for(stop, kHeartbeat, [this] { return heartbeat_stop_; })) {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    answer_roll_calls();
  }
}

void World::stop_heartbeat() {
  if (!heartbeat_.joinable()) return;
  {
    std::lock_guard<std::mutex> stop(heartbeat_mu_);
    heartbeat_stop_ = true;
  }
  heartbeat_cv_.notify_all();
  heartbeat_.join();
}

void World::wait(MPI_Request& request, const char* what, Deadline deadline) const {
  const auto start = Clock::now();
  auto last_roll = start;
  const double limit = step_timeout_ <= 0 ? -1 : step_timeout_ + (rank_ > 0 ? kFollowerGrace : 0);
  for (;;) {
    int done = 0;
    {
      std::lock_guard<std::mutex> mpi(mpi_mu_);
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    }
    if (done) return;
    const auto now = Clock::now();
    if (limit >= 0 && now - last_roll >= std::chrono::duration<double>(limit)) {
      if (deadline == Deadline::step) time_out(what, seconds_since(start));
      const std::string silent = call_roll(kCheck);
      if (!silent.empty()) {
        report_silent(silent, what, seconds_since(start));
        std::lock_guard<std::mutex> mpi(mpi_mu_);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      last_roll = Clock::now();
    }
    if (now - start < kSpin)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(kPollSleep);
  }
}

void World::answer_roll_calls() const {
  for (const int tag : {kCall, kCheck}) {
    for (;;) {
      int arrived = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, tag, roll_comm_, &arrived, &st);
      if (!arrived) break;
      int call = 0;
      MPI_Recv(&call, 1, MPI_INT, st.MPI_SOURCE, tag, roll_comm_, MPI_STATUS_IGNORE);
      if (tag == kCall) called_ = true;
      // Nonblocking, never completed here: the caller may be gone by the time it arrives.
      MPI_Request r;
      MPI_Isend(&kAnswerPayload, 1, MPI_INT, st.MPI_SOURCE, kAnswer, roll_comm_, &r);
      MPI_Request_free(&r);
    }
  }
}

std::string World::call_roll(int tag) const {
  const auto start = Clock::now();
  std::vector<int> answer(size_t(size_), -1);
  std::vector<MPI_Request> pending(size_t(size_), MPI_REQUEST_NULL);
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      MPI_Request sent;
      MPI_Isend(&kAnswerPayload, 1, MPI_INT, r, tag, roll_comm_, &sent);
      MPI_Request_free(&sent);
      MPI_Irecv(&answer[size_t(r)], 1, MPI_INT, r, kAnswer, roll_comm_, &pending[size_t(r)]);
    }
  }
  int all = 0;
  while (!all && Clock::now() - start < kRollCall) {
    std::this_thread::sleep_for(kPollSleep);
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    MPI_Testall(size_, pending.data(), &all, MPI_STATUSES_IGNORE);
  }
  if (all) return "";
  std::string silent;
  std::lock_guard<std::mutex> mpi(mpi_mu_);
  for (int r = 0; r < size_; ++r) {
    int answered = r == rank_;
    if (!answered) MPI_Test(&pending[size_t(r)], &answered, MPI_STATUS_IGNORE);
    if (!answered) silent += (silent.empty() ? "" : ", ") + name(r);
  }
  return silent;
}

void World::report_silent(const std::string& silent, const char* what, double waited) const {
  if (silent.empty())
    std::fprintf(stderr,
                 "dsv4: %s waited %.0f s in %s (--step-timeout %g) although every rank answers: the ranks are out of "
                 "step; ending the job\n",
                 name(rank_).c_str(), waited, what, step_timeout_);
  else
    std::fprintf(stderr, "dsv4: %s did not answer: %s waited %.0f s for it in %s (--step-timeout %g); ending the job\n",
                 silent.c_str(), name(rank_).c_str(), waited, what, step_timeout_);
  std::fflush(stderr);
}

void World::time_out(const char* what, double waited) const {
  bool called = false;
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    called = called_;
  }
  // Another rank has called the roll and ends the job; the heartbeat answers the others until it
  // does.
  if (called) std::this_thread::sleep_for(kCalledWait);
  if (!called) report_silent(call_roll(kCall), what, waited);
  std::lock_guard<std::mutex> mpi(mpi_mu_);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();   // not reached: MPI_Abort ends every process of the job
}

Status World::agree(const Status& mine) const {
  const int failed = mine.ok() ? 0 : 1;
  std::vector<int> all(static_cast<size_t>(size_));
  MPI_Request req;
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    MPI_Iallgather(&failed, 1, MPI_INT, all.data(), 1, MPI_INT, comm_, &req);
  }
  wait(req, "the outcome of the load", Deadline::alive);
  const int first = int(std::find(all.begin(), all.end(), 1) - all.begin());
  if (first == size_) return Status::ok_status();
  int code = int(mine.code());
  std::string message = rank_ == first ? mine.message() : std::string();
  int64_t len = int64_t(message.size());
  bcast(&code, 1, MPI_INT, first, "the outcome of the load", Deadline::alive);
  bcast(&len, 1, MPI_INT64_T, first, "the outcome of the load", Deadline::alive);
  message.resize(size_t(len));
  bcast(message.data(), int(len), MPI_CHAR, first, "the outcome of the load", Deadline::alive);
  return Status(StatusCode(code), name(first) + ": " + message);
}

void World::bcast(void* data, int count, MPI_Datatype type, int root, const char* what, Deadline deadline) const {
  MPI_Request req;
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    MPI_Ibcast(data, count, type, root, comm_, &req);
  }
  wait(req, what, deadline);
}

void World::broadcast(std::vector<int64_t>& words) const {
  int64_t n = int64_t(words.size());
  bcast(&n, 1, MPI_INT64_T, 0, "the broadcast of rank 0's next call", rank_ == 0 ? Deadline::step : Deadline::alive);
  words.resize(size_t(n));
  bcast(words.data(), int(n), MPI_INT64_T, 0, "the broadcast of rank 0's next call", Deadline::step);
}

int64_t World::broadcast(int64_t value) const {
  bcast(&value, 1, MPI_INT64_T, 0, "the broadcast of a draft token", Deadline::step);
  return value;
}

std::vector<double> World::gather(const std::vector<double>& mine) const {
  std::vector<double> all(mine.size() * size_t(size_));
  MPI_Request req;
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    MPI_Igather(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), int(mine.size()), MPI_DOUBLE, 0, comm_, &req);
  }
  wait(req, "the gather of the ranks' figures", Deadline::step);
  return all;
}

int World::finish(int exit_status) {
  MPI_Request done;
  {
    std::lock_guard<std::mutex> mpi(mpi_mu_);
    MPI_Ibarrier(exit_comm_, &done);
  }
  const auto deadline = std::chrono::steady_clock::now() + kEndWait;
  int ended = 0;
  for (;;) {
    {
      std::lock_guard<std::mutex> mpi(mpi_mu_);
      MPI_Test(&done, &ended, MPI_STATUS_IGNORE);
    }
    if (ended || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (ended) return exit_status;
  std::fprintf(stderr, "dsv4: %s ended (exit status %d) while other ranks are still working: ending the job\n",
               name(rank_).c_str(), exit_status);
  std::fflush(stderr);
  std::lock_guard<std::mutex> mpi(mpi_mu_);
  MPI_Abort(MPI_COMM_WORLD, exit_status != 0 ? exit_status : 1);
  return exit_status;   // not reached: MPI_Abort ends every process of the job
}

void World::exit(int exit_status) {
  const int status = finish(exit_status);
  std::fflush(stdout);
  stop_heartbeat();
  MPI_Comm_free(&comm_);
  MPI_Comm_free(&exit_comm_);
  MPI_Comm_free(&roll_comm_);
  MPI_Finalize();
  std::exit(status);
}

}  // namespace dsv4::runtime

// The processes of one `mpirun` launch (issue #17, docs/scale-out.md): expert parallelism over
// MPI. Rank 0 runs the command as in a single process (HTTP, tokenizer, scheduler); every rank
// holds a share of the routed experts and runs each engine call in lockstep with it.
//
// Every rank runs the same command line up to the engine load (argument checks, integrity,
// tokenizer), so a mistake common to all ranks fails on all of them alike; from the load on,
// rank 0 drives and the others follow (runtime/world_engine.h).
//
// Faults end the whole job, never hang it: a load that fails on some rank is reported once, by
// rank 0, naming the rank and its host (agree); a rank that stops on its own while the others go
// on ends the job (finish); a rank that dies is noticed by the launcher, which ends the others; a
// rank that hangs without dying (stopped, stuck in a read, in a loop) is found by the step
// deadline (wait): every collective of a step is nonblocking and polled, and a rank that has
// waited longer than the step timeout calls the roll, names the ranks that do not answer and
// ends the job.
//
// Thread-safety: MPI is initialised MPI_THREAD_SERIALIZED: one thread at a time may call into a
// World (in `serve`, the scheduler's inference thread while it runs, the main thread otherwise).
// The deadline needs no thread of its own: the waiting thread polls it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <mpi.h>

#include "core/status.h"

namespace dsv4::runtime {

class World {
 public:
  // Joins the launch when an MPI launcher started this process (mpirun sets OMPI_COMM_WORLD_SIZE;
  // PMI_SIZE or PMIX_RANK for others); nullptr when none did, and then nothing touches MPI: a
  // plain `dsv4 ...` behaves exactly as before. On a rank > 0, stdout is sent to /dev/null (rank 0
  // prints the results); stderr stays.
  static Result<std::unique_ptr<World>> join(int* argc, char*** argv);
  ~World();   // MPI_Finalize
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  // "rank 1 of 3 (host node7)": how messages name a process.
  std::string name(int rank) const;

  // How long a collective of a step may wait for the other ranks (every rank runs the same
  // replicated work, so they reach each collective within a small part of a step of each other):
  // past it, the job ends (wait). 0: no deadline. The same on every rank (a command-line flag).
  static constexpr double kDefaultStepTimeout = 120;
  void set_step_timeout(double seconds) { step_timeout_ = seconds; }
  double step_timeout() const { return step_timeout_; }

  // Whether a wait is bounded by the step timeout: a step's collectives are; a follower's wait for
  // rank 0's next call is not (a server may be idle for hours), nor a load (minutes of reading).
  enum class Deadline { step, none };
  // Completes `request`, a nonblocking operation on comm(), polling it. Meanwhile answers the
  // other ranks' roll calls. Past the deadline it calls the roll itself: asks every other rank
  // whether it is alive, waits kRollCall seconds for the answers, prints one error naming those
  // that did not answer (rank and host) and `what` it waited in, and ends the job (MPI_Abort).
  // A rank that has been called by another leaves the report to that one.
  void wait(MPI_Request& request, const char* what, Deadline deadline) const;

  // Collective: every rank passes its own outcome of a step that may fail on some ranks only (a
  // shard missing on one node); all get OK, or the lowest failing rank's error prefixed by its
  // name().
  Status agree(const Status& mine) const;

  // Collective: words from rank 0 to every rank (resized on the others). On the other ranks the
  // wait for them has no deadline (it is the wait for rank 0's next call); on rank 0 it has.
  void broadcast(std::vector<int64_t>& words) const;
  // Collective, within a step: one value from rank 0.
  int64_t broadcast(int64_t value) const;
  // Collective, within a step: `mine` from every rank, in rank order (the result is meaningful on
  // rank 0 only).
  std::vector<double> gather(const std::vector<double>& mine) const;

  // The end of the command on this rank, with its exit status; returns the status to exit with.
  // Waits a few seconds for the other ranks to end too; when some do not (they are still working,
  // e.g. waiting in a collective for this rank), reports this rank's name and ends the whole job
  // (MPI_Abort) rather than leave it hanging.
  int finish(int exit_status);
  // A follower rank's end (runtime/world_engine.h): finish(exit_status), MPI_Finalize and
  // std::exit, from deep inside the command whose rank 0 reports the results.
  [[noreturn]] void exit(int exit_status);

  // The communicator of the ranks' collectives (the lockstep calls, the expert exchange).
  MPI_Comm comm() const { return comm_; }

 private:
  World() = default;
  int rank_ = 0, size_ = 1;
  std::string host_;
  std::vector<std::string> hosts_;   // [rank]
  MPI_Comm comm_ = MPI_COMM_NULL;        // a duplicate of MPI_COMM_WORLD
  MPI_Comm exit_comm_ = MPI_COMM_NULL;   // finish()'s alone, so it never matches another collective
  MPI_Comm roll_comm_ = MPI_COMM_NULL;   // the roll calls' point-to-point messages
  double step_timeout_ = kDefaultStepTimeout;

  void bcast(void* data, int count, MPI_Datatype type, int root, const char* what, Deadline deadline) const;
  // Answers every roll call that has arrived.
  void answer_roll_calls() const;
  [[noreturn]] void time_out(const char* what, double waited) const;
  // The roll calls' bookkeeping, changed while waiting (by the const collectives).
  mutable bool called_ = false;                  // another rank has called the roll
  mutable std::deque<int> answers_;              // the payloads of the answers sent (alive until sent)
};

}  // namespace dsv4::runtime

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
// ends the job. A wait with no deadline on progress (a follower's wait for rank 0's next call, a
// load) still calls the roll every step timeout: a rank stopped while the others wait for it
// outside a step (rank 0 between two calls, a rank in its load) ends the job as well.
//
// Roll calls are answered by a thread of each process (the heartbeat), so a rank answers whatever
// its command is doing (a long prefill, reading stdin in `chat`, a server idle for hours) and
// stays silent only when the process is stopped or cannot get at MPI.
//
// Thread-safety: MPI is initialised MPI_THREAD_SERIALIZED. A World serializes every MPI call it
// makes, and the heartbeat's, under one mutex; code outside World that calls MPI holds lock().
// One thread at a time calls the collectives (in `serve`, the scheduler's inference thread while it
// runs, the main thread otherwise).
#pragma once

#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
  ~World();   // stops the heartbeat, MPI_Finalize
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

  // What bounds a wait. `step`: the step timeout (a step's collectives). `alive`: nothing bounds
  // the progress (a follower's wait for rank 0's next call: a server may be idle for hours; a
  // load: minutes of reading), but every step timeout the other ranks must answer a roll call.
  enum class Deadline { step, alive };
  // Completes `request`, a nonblocking operation on comm(), polling it. Past the step deadline it
  // calls the roll: asks every other rank whether it is alive, waits kRollCall seconds for the
  // answers, prints one error naming those that did not answer (rank and host) and `what` it
  // waited in, and ends the job (MPI_Abort). A rank that has been called by another leaves the
  // report to that one. Under `alive`, a roll call that every rank answers lets the wait go on.
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
  // Held around every MPI call made outside World (the heartbeat thread calls MPI too).
  std::unique_lock<std::mutex> lock() const { return std::unique_lock<std::mutex>(mpi_mu_); }

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
  // The heartbeat thread (every rank of a launch of more than one): answers the roll calls that
  // have arrived, every kHeartbeat, until stop_heartbeat().
  void heartbeat();
  void stop_heartbeat();
  // Answers every roll call that has arrived (mpi_mu_ held).
  void answer_roll_calls() const;
  // Calls the roll (tag kCall: this rank ends the job after it; kCheck: a liveness check) and
  // returns the names of the ranks that did not answer within kRollCall, "" when all did.
  std::string call_roll(int tag) const;
  // Prints which ranks did not answer while this one waited `waited` seconds in `what`.
  void report_silent(const std::string& silent, const char* what, double waited) const;
  [[noreturn]] void time_out(const char* what, double waited) const;

  mutable std::mutex mpi_mu_;   // serializes MPI calls (MPI_THREAD_SERIALIZED)
  // Another rank has called the roll to end the job (mpi_mu_ held to read or write).
  mutable bool called_ = false;
  std::thread heartbeat_;
  std::mutex heartbeat_mu_;
  std::condition_variable heartbeat_cv_;
  bool heartbeat_stop_ = false;
};

}  // namespace dsv4::runtime

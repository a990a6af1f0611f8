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
// on ends the job (finish); a rank that dies is noticed by the launcher, which ends the others.
//
// Thread-safety: MPI is initialised MPI_THREAD_SERIALIZED: one thread at a time may call into a
// World (in `serve`, the scheduler's inference thread while it runs, the main thread otherwise).
#pragma once

#include <cstdint>
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

  // Collective: every rank passes its own outcome of a step that may fail on some ranks only (a
  // shard missing on one node); all get OK, or the lowest failing rank's error prefixed by its
  // name().
  Status agree(const Status& mine) const;

  // Collective: words from rank 0 to every rank (resized on the others).
  void broadcast(std::vector<int64_t>& words) const;
  // Collective: one value from rank 0.
  int64_t broadcast(int64_t value) const;
  // Collective: `mine` from every rank, in rank order (the result is meaningful on rank 0 only).
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
};

}  // namespace dsv4::runtime

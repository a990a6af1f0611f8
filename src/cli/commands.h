// The command table of the `dsv4` executable. Each command lives in its own cmd_*.cpp file and
// receives argv starting at the command name.
#pragma once

#include <vector>

#include "runtime/mpi_world.h"

namespace dsv4::cli {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

const std::vector<Command>& commands();

// The ranks of an `mpirun` launch this process belongs to (runtime/mpi_world.h), joined and owned
// by main(); null in a plain process.
runtime::World* launch_world();

}  // namespace dsv4::cli

// The command table of the `dsv4` executable. Each command lives in its own cmd_*.cpp file and
// receives argv starting at the command name.
#pragma once

#include <vector>

namespace dsv4::cli {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

const std::vector<Command>& commands();

}  // namespace dsv4::cli

#include "cli/commands.h"

namespace dsv4::cli {

// One declaration and one table row per command; the definitions live in cmd_<name>.cpp.
int cmd_inspect(int argc, char** argv);
int cmd_score(int argc, char** argv);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"inspect", "load and validate a checkpoint directory, print its configuration", cmd_inspect},
      {"score", "check the engine against a reference from the official code (per layer, logits)", cmd_score},
  };
  return table;
}

}  // namespace dsv4::cli

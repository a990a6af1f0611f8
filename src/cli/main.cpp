// dsv4 command-line entry point: dispatches `dsv4 <command> ...` to the command table.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace dsv4::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::printf("usage: dsv4 <command> [options]\n\ncommands:\n");
    for (const Command& c : commands()) std::printf("  %-18s %s\n", c.name, c.summary);
    std::printf("\n`dsv4 <command> --help` describes a command's options.\n");
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : commands()) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "dsv4: unknown command '%s' (see `dsv4 --help`)\n", argv[1]);
  return 2;
}

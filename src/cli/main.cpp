// dsv4 command-line entry point: dispatches `dsv4 <command> ...` to the command table.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace dsv4::cli {

namespace {
runtime::World* g_world = nullptr;
}  // namespace

runtime::World* launch_world() { return g_world; }

// The command, within the launch's World when mpirun started this process: each rank runs it,
// and a rank whose command ends while the others go on ends the job (World::finish).
int run_command(const Command& c, int argc, char** argv) {
  auto world = runtime::World::join(&argc, &argv);
  if (!world.ok()) {
    std::fprintf(stderr, "dsv4: %s\n", world.status().to_string().c_str());
    return 1;
  }
  g_world = world->get();
  // The commands that load a model through the launch (the others would each do the whole job
  // on every rank: synth would write the same files N times).
  constexpr const char* kOnRanks[] = {"run", "chat", "serve", "bench", "score"};
  if (g_world && g_world->size() > 1 &&
      std::none_of(std::begin(kOnRanks), std::end(kOnRanks), [&](const char* n) { return !std::strcmp(n, c.name); })) {
    if (g_world->rank() == 0)
      std::fprintf(stderr, "dsv4 %s: does not run on several MPI ranks (run, chat, serve, bench and score do)\n", c.name);
    return g_world->finish(2);
  }
  const int status = c.run(argc - 1, argv + 1);
  return g_world ? g_world->finish(status) : status;
}

}  // namespace dsv4::cli

int main(int argc, char** argv) {
  using namespace dsv4::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::printf("usage: dsv4 <command> [options]\n\ncommands:\n");
    for (const Command& c : commands()) std::printf("  %-18s %s\n", c.name, c.summary);
    std::printf("\n`dsv4 <command> --help` describes a command's options.\n");
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : commands()) {
    if (std::strcmp(argv[1], c.name) == 0) return run_command(c, argc, argv);
  }
  std::fprintf(stderr, "dsv4: unknown command '%s' (see `dsv4 --help`)\n", argv[1]);
  return 2;
}

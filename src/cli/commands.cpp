#include "cli/commands.h"

namespace dsv4::cli {

// One declaration and one table row per command; the definitions live in cmd_<name>.cpp.
int cmd_inspect(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_verify(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_render(int argc, char** argv);
int cmd_parse_completion(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_serve(int argc, char** argv);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"inspect", "load and validate a checkpoint directory, print its configuration", cmd_inspect},
      {"bench", "load time, prefill/decode tokens/s, decode vs the measured memory-bandwidth bound", cmd_bench},
      {"score", "check the engine against a reference from the official code (per layer, logits)", cmd_score},
      {"synth", "write a random-weight checkpoint (tiny, flash or pro dimensions) in the official format", cmd_synth},
      {"verify", "check a checkpoint against its SHA256SUMS (--write to create it)", cmd_verify},
      {"tokenize", "JSON Lines {\"text\"} -> {\"ids\"} (--decode: the reverse; --bench: throughput)", cmd_tokenize},
      {"render", "JSON Lines {\"messages\", \"options\"} -> {\"prompt\"} in the official V4 chat format", cmd_render},
      {"parse-completion", "JSON Lines {\"completion\", \"thinking_mode\"} -> parsed assistant message", cmd_parse_completion},
      {"run", "generate an answer to one prompt (-p), streamed, with token counts and speed", cmd_run},
      {"chat", "interactive multi-turn chat that keeps its state between turns", cmd_chat},
      {"serve", "OpenAI- and Anthropic-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/messages, /metrics)", cmd_serve},
  };
  return table;
}

}  // namespace dsv4::cli

// How the model thinks, one type for every way of asking (PROMPT-FORMAT.md §4, addendum §A6,
// v4.1 §11.4): the CLI's --think / --no-think / --effort (and `dsv4 chat`'s /think), the
// encoder's own options (thinking_mode, reasoning_effort), and the HTTP APIs' reasoning_effort,
// thinking and chat_template_kwargs (OpenAI), thinking and output_config.effort (Anthropic) and
// reasoning.effort (Responses), each read once into it. Which effort levels exist is the encoder
// revision's (text/encoder_revision.h: effort_levels; api_effort_level maps the APIs' names).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "text/encoder_revision.h"

namespace dsv4::text {

enum class ThinkingMode { chat, thinking };

struct Thinking {
  ThinkingMode mode = ThinkingMode::thinking;
  // A level of the encoder revision (effort_levels; V4.1 also "1".."100"), "" = its default.
  // The encoder writes it in thinking mode only; any other value is an error in both modes.
  std::string effort;
  // Reasoning tokens before `</think>` is forced (text/output_steering.h); 0 = none.
  int64_t budget = 0;

  bool on() const { return mode == ThinkingMode::thinking; }
};

// The mode by name, "chat" or "thinking", as the encoder's options and `dsv4 parse-completion`
// spell it. Errors: invalid_argument "thinking_mode must be "chat" or "thinking"".
Result<ThinkingMode> thinking_mode_named(std::string_view name);

// Whether `effort` is a level of `revision` ("" is): the error the encoder would give, naming
// the levels (effort_prefix). The CLI checks --effort with it before the model loads.
Status check_effort(EncoderRevision revision, std::string_view effort);

}  // namespace dsv4::text

// Which revision of DeepSeek's official chat encoder renders a prompt, and the reasoning-effort
// levels each revision has (addendum §A6.1-A6.2, PROMPT-FORMAT.md §4). The one place that
// decides the revision of a loaded checkpoint: `run`, `chat`, `serve` and `render -m` all ask
// encoder_revision_for.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "io/config.h"

namespace dsv4::text {

enum class EncoderRevision {
  v4,              // DeepSeek-V4-Flash / V4-Pro preview: "high" -> no prefix, "max" -> Absolute maximum
  v4_flash_0731,   // Flash-0731 / Pro-0813: "low" -> none, "high" -> Absolute maximum, "max" -> Beyond maximum
};

// The encoder of a checkpoint of this release family (addendum §A6.5): "high" renders
// differently in the two tables, so the choice follows the checkpoint. Flash-0731 and Pro-0813
// (io::Revision::dspark: the root config has `dspark_*` keys) take the 0731 encoder, which the
// 0813 release note confirms for Pro too (addendum §A7); the preview keeps its own.
EncoderRevision encoder_revision_for(io::Revision checkpoint);

// "v4" or "v4-flash-0731", as `render`'s options spell it.
std::string_view encoder_revision_name(EncoderRevision revision);

// One reasoning-effort level and the text it writes before the first message in thinking mode
// (empty = none). Chat mode writes no prefix at any level.
struct EffortLevel {
  std::string_view name;
  std::string_view prefix;
};

// The levels of a revision, weakest first (addendum §A6.1). The first is also what an empty
// effort renders: the preview's None has no prefix, like its "high"; 0731's None is "low".
//   v4             high, max
//   v4_flash_0731  low, high, max
std::span<const EffortLevel> effort_levels(EncoderRevision revision);

// "high, max": the level names, for messages.
std::string effort_level_names(EncoderRevision revision);

// The level of `revision` that an HTTP API's effort name selects, by the mapping DeepSeek's own
// API documents (api-docs.deepseek.com, "Thinking Mode": requested -> actual effort), so that
// clients written for OpenAI or Anthropic models (Codex sends "medium" by default) run unchanged:
//   v4             minimal, low, medium, high -> high;  xhigh, max -> max
//   v4_flash_0731  minimal, low -> low;  medium, high -> high;  xhigh, max -> max
// Errors: invalid_argument for any other name, listing the accepted ones.
Result<std::string_view> api_effort_level(EncoderRevision revision, std::string_view requested);

// "minimal, low, medium, high, xhigh, max": the names api_effort_level takes, for messages.
std::string api_effort_names();

// The prefix of `effort` ("" = the revision's default). Errors: invalid_argument naming the
// revision's levels when it has no such level (the preview's encoder asserts on "low").
Result<std::string_view> effort_prefix(EncoderRevision revision, std::string_view effort);

}  // namespace dsv4::text

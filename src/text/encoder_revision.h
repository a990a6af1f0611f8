// Which revision of DeepSeek's official chat encoder renders a prompt, and the reasoning-effort
// levels each revision has (addendum §A6.1-A6.2, PROMPT-FORMAT.md §4; V4.1: v4.1 §11.4). The one
// place that decides the revision of a loaded checkpoint: `run`, `chat`, `serve` and `render -m`
// all ask encoder_revision_for.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "io/config.h"
#include "text/chat_tokens.h"

namespace dsv4::text {

enum class EncoderRevision {
  v4,              // DeepSeek-V4-Flash / V4-Pro preview: "high" -> no prefix, "max" -> Absolute maximum
  v4_flash_0731,   // Flash-0731 / Pro-0813: "low" -> none, "high" -> Absolute maximum, "max" -> Beyond maximum
  v41,             // DeepSeek-V4.1-Flash (v4.1 §11): <｜System｜>, a numeric effort 1-100, spaced DSML tags
};

// The encoder of a checkpoint. V4.1 checkpoints take V4.1's (v4.1 §11). Within V4, "high"
// renders differently in the two tables, so the choice follows the release (addendum §A6.5):
// Flash-0731 and Pro-0813 (io::Revision::dspark: the root config has `dspark_*` keys) take the
// 0731 encoder, which the 0813 release note confirms for Pro too (addendum §A7); the preview keeps
// its own. The architecture decides first: a V4.1 config has dspark_* keys too.
EncoderRevision encoder_revision_for(const io::ModelConfig& config);

// "v4", "v4-flash-0731" or "v4.1", as `render` and `parse-completion` spell it.
std::string_view encoder_revision_name(EncoderRevision revision);
// The revision of that name. Errors: invalid_argument listing the names.
Result<EncoderRevision> encoder_revision_named(std::string_view name);

// The DSML tags the revision writes (V4's, or V4.1's with a space inside every name).
const chat::DsmlTags& dsml_tags(EncoderRevision revision);
// The dialects a completion's tool-call block may be written in: the revision's, and V4's too
// under V4.1 (the spec advises accepting both, v4.1 §11.3). The completion parser reads them and
// the DSML constraint (text/dsml_matcher.h) allows them, the revision's first.
std::span<const chat::DsmlTags* const> dsml_dialects(EncoderRevision revision);

// One named reasoning-effort level. V4 revisions write a fixed text before the first message in
// thinking mode (`prefix`, empty = none); V4.1 writes a numeric effort line (`value`, 1..100,
// v4.1 §11.2 rule 1). Chat mode writes nothing at any level.
struct EffortLevel {
  std::string_view name;
  std::string_view prefix;  // V4 revisions
  int value = 0;            // V4.1
};

// The named levels of a revision, weakest first (addendum §A6.1, v4.1 §11.4):
//   v4             high, max
//   v4_flash_0731  low, high, max
//   v41            low (50), high (75), max (100); any integer 1-100 is a level too
std::span<const EffortLevel> effort_levels(EncoderRevision revision);

// The level an empty effort renders: the preview's None has no prefix, like its "high"; 0731's
// None is "low"; V4.1's is "high" (75 in the released table, v4.1 §11.4).
std::string_view default_effort_level(EncoderRevision revision);

// Whether the revision takes a number 1-100 as an effort (V4.1, v4.1 §11.4).
bool has_numeric_effort(EncoderRevision revision);

// "high, max", or V4.1's "low, high, max, 1-100": the levels, for messages.
std::string effort_level_names(EncoderRevision revision);

// The level of `revision` that an HTTP API's effort name selects, by the mapping DeepSeek's own
// API documents (api-docs.deepseek.com, "Thinking Mode": requested -> actual effort), so that
// clients written for OpenAI or Anthropic models (Codex sends "medium" by default) run unchanged:
//   v4             minimal, low, medium, high -> high;  xhigh, max -> max
//   v4_flash_0731  minimal, low -> low;  medium, high -> high;  xhigh, max -> max
//   v41            minimal, low -> low;  medium, high, xhigh -> high;  max -> max;  1-100 as given
// V4.1's xhigh: the released encoder has no such level (v4.1 §11.4); DeepSeek's API maps it to
// high, and so does this function, outside the encoder, as the spec advises.
// Errors: invalid_argument for any other name, listing the accepted ones.
Result<std::string> api_effort_level(EncoderRevision revision, std::string_view requested);

// "minimal, low, medium, high, xhigh, max" (V4.1: and "1-100"): the names api_effort_level takes
// for `revision`, for messages.
std::string api_effort_names(EncoderRevision revision);

// The text written before the first message in thinking mode at `effort` ("" = the revision's
// default): V4's fixed prefix, or V4.1's effort line. Errors: invalid_argument naming the
// revision's levels when it has no such level (the preview's encoder asserts on "low", V4.1's on
// "xhigh", 0 and 101).
Result<std::string> effort_prefix(EncoderRevision revision, std::string_view effort);

}  // namespace dsv4::text

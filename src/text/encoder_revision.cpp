#include "text/encoder_revision.h"

#include <optional>

namespace dsv4::text {

namespace {

// Addendum §A6.1-A6.2: the 0731 refresh moved the levels down one. The preview's "max" text
// (Absolute maximum) became 0731's "high", and 0731's "max" is a new text (Beyond maximum).
constexpr EffortLevel kPreviewLevels[] = {
    {"high", ""},
    {"max", chat::kEffortAbsoluteMax},
};
constexpr EffortLevel k0731Levels[] = {
    {"low", ""},
    {"high", chat::kEffortAbsoluteMax},
    {"max", chat::kEffortBeyondMax},
};
// v4.1 §11.4, the released table (HF `df42c10…` and `dba1be0a`). The pre-release table that the
// vLLM and SGLang ports carry (low 25, high 50, xhigh 75, max 100) is a trap: it prompts the
// default with 50 where the released model was prompted with 75. It is not implemented, and its
// "xhigh" is refused here (see effort_prefix); the HTTP APIs map xhigh to high before the
// encoder, as DeepSeek's API does (api_effort_level).
constexpr EffortLevel kV41Levels[] = {
    {"low", "", 50},
    {"high", "", 75},
    {"max", "", 100},
};

constexpr EncoderRevision kRevisions[] = {EncoderRevision::v4, EncoderRevision::v4_flash_0731, EncoderRevision::v41};

// DeepSeek's API mapping (api_effort_level): each API name and the level it selects. The
// preview's table predates "low": DeepSeek mapped low and medium to high then.
struct ApiEffort {
  std::string_view requested, preview, r0731, v41;
};
constexpr ApiEffort kApiEfforts[] = {
    {"minimal", "high", "low", "low"},   {"low", "high", "low", "low"},    {"medium", "high", "high", "high"},
    {"high", "high", "high", "high"},    {"xhigh", "max", "max", "high"},  {"max", "max", "max", "max"},
};

// A V4.1 numeric effort: an integer 1..100 written in canonical decimal ("7", "100"; not "07",
// "+7" or "7.0"), as the encoder takes Python ints only (v4.1 §11.4: floats and booleans refused).
std::optional<int> effort_number(std::string_view s) {
  if (s.empty() || s.size() > 3 || s[0] < '1' || s[0] > '9') return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > 100) return std::nullopt;
  return v;
}

}  // namespace

EncoderRevision encoder_revision_for(const io::ModelConfig& config) {
  if (config.architecture == io::Architecture::v41) return EncoderRevision::v41;
  switch (config.revision) {
    case io::Revision::preview: return EncoderRevision::v4;
    case io::Revision::dspark: return EncoderRevision::v4_flash_0731;
  }
  return EncoderRevision::v4;
}

std::string_view encoder_revision_name(EncoderRevision revision) {
  switch (revision) {
    case EncoderRevision::v4: return "v4";
    case EncoderRevision::v4_flash_0731: return "v4-flash-0731";
    case EncoderRevision::v41: return "v4.1";
  }
  return "v4";
}

Result<EncoderRevision> encoder_revision_named(std::string_view name) {
  std::string names;
  for (EncoderRevision r : kRevisions) {
    if (encoder_revision_name(r) == name) return r;
    names += names.empty() ? "\"" : ", \"";
    names += encoder_revision_name(r);
    names += "\"";
  }
  return Status::invalid_argument("revision must be one of " + names);
}

const chat::DsmlTags& dsml_tags(EncoderRevision revision) {
  return revision == EncoderRevision::v41 ? chat::kDsmlV41 : chat::kDsmlV4;
}

std::span<const chat::DsmlTags* const> dsml_dialects(EncoderRevision revision) {
  static constexpr const chat::DsmlTags* kV4[] = {&chat::kDsmlV4};
  static constexpr const chat::DsmlTags* kV41[] = {&chat::kDsmlV41, &chat::kDsmlV4};
  if (revision == EncoderRevision::v41) return kV41;
  return kV4;
}

std::span<const EffortLevel> effort_levels(EncoderRevision revision) {
  switch (revision) {
    case EncoderRevision::v4: return kPreviewLevels;
    case EncoderRevision::v4_flash_0731: return k0731Levels;
    case EncoderRevision::v41: return kV41Levels;
  }
  return kPreviewLevels;
}

std::string_view default_effort_level(EncoderRevision revision) {
  return revision == EncoderRevision::v41 ? "high" : effort_levels(revision).front().name;
}

bool has_numeric_effort(EncoderRevision revision) { return revision == EncoderRevision::v41; }

std::string effort_level_names(EncoderRevision revision) {
  std::string out;
  for (const EffortLevel& l : effort_levels(revision)) {
    if (!out.empty()) out += ", ";
    out += l.name;
  }
  if (has_numeric_effort(revision)) out += ", 1-100";
  return out;
}

Result<std::string> api_effort_level(EncoderRevision revision, std::string_view requested) {
  for (const ApiEffort& e : kApiEfforts) {
    if (e.requested != requested) continue;
    switch (revision) {
      case EncoderRevision::v4: return std::string(e.preview);
      case EncoderRevision::v4_flash_0731: return std::string(e.r0731);
      case EncoderRevision::v41: return std::string(e.v41);
    }
  }
  if (has_numeric_effort(revision) && effort_number(requested)) return std::string(requested);
  return Status::invalid_argument("reasoning effort '" + std::string(requested) + "' is not one of " +
                                  api_effort_names(revision));
}

std::string api_effort_names(EncoderRevision revision) {
  std::string out;
  for (const ApiEffort& e : kApiEfforts) {
    if (!out.empty()) out += ", ";
    out += e.requested;
  }
  if (has_numeric_effort(revision)) out += ", 1-100";
  return out;
}

Result<std::string> effort_prefix(EncoderRevision revision, std::string_view effort) {
  if (effort.empty()) effort = default_effort_level(revision);
  int value = 0;  // V4.1's number; 0 = not a level
  if (has_numeric_effort(revision)) value = effort_number(effort).value_or(0);
  for (const EffortLevel& l : effort_levels(revision)) {
    if (l.name != effort) continue;
    if (!has_numeric_effort(revision)) return std::string(l.prefix);
    value = l.value;
  }
  if (value > 0) {
    std::string line(chat::kEffortNumberBefore);
    line += std::to_string(value);
    line += chat::kEffortNumberAfter;
    return line;
  }
  std::string why = "reasoning effort '" + std::string(effort) + "' is not a level of the " +
                    std::string(encoder_revision_name(revision)) + " chat encoder (its levels: " +
                    effort_level_names(revision) + ")";
  if (revision == EncoderRevision::v41 && effort == "xhigh")
    why += "; xhigh is in the pre-release V4.1 table only, which the released encoder does not accept (v4.1 §11.4)";
  return Status::invalid_argument(why);
}

}  // namespace dsv4::text

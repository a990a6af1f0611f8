#include "text/encoder_revision.h"

#include "text/chat_tokens.h"

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

// DeepSeek's API mapping (api_effort_level): each API name and the level it selects. The
// preview's table predates "low": DeepSeek mapped low and medium to high then.
struct ApiEffort {
  std::string_view requested, preview, r0731;
};
constexpr ApiEffort kApiEfforts[] = {
    {"minimal", "high", "low"}, {"low", "high", "low"}, {"medium", "high", "high"},
    {"high", "high", "high"},   {"xhigh", "max", "max"}, {"max", "max", "max"},
};

}  // namespace

EncoderRevision encoder_revision_for(io::Revision checkpoint) {
  switch (checkpoint) {
    case io::Revision::preview: return EncoderRevision::v4;
    case io::Revision::dspark: return EncoderRevision::v4_flash_0731;
  }
  return EncoderRevision::v4;
}

std::string_view encoder_revision_name(EncoderRevision revision) {
  return revision == EncoderRevision::v4 ? "v4" : "v4-flash-0731";
}

std::span<const EffortLevel> effort_levels(EncoderRevision revision) {
  if (revision == EncoderRevision::v4) return kPreviewLevels;
  return k0731Levels;
}

std::string effort_level_names(EncoderRevision revision) {
  std::string out;
  for (const EffortLevel& l : effort_levels(revision)) {
    if (!out.empty()) out += ", ";
    out += l.name;
  }
  return out;
}

Result<std::string_view> api_effort_level(EncoderRevision revision, std::string_view requested) {
  for (const ApiEffort& e : kApiEfforts)
    if (e.requested == requested) return revision == EncoderRevision::v4 ? e.preview : e.r0731;
  return Status::invalid_argument("reasoning effort '" + std::string(requested) + "' is not one of " +
                                  api_effort_names());
}

std::string api_effort_names() {
  std::string out;
  for (const ApiEffort& e : kApiEfforts) {
    if (!out.empty()) out += ", ";
    out += e.requested;
  }
  return out;
}

Result<std::string_view> effort_prefix(EncoderRevision revision, std::string_view effort) {
  const auto levels = effort_levels(revision);
  if (effort.empty()) return levels.front().prefix;
  for (const EffortLevel& l : levels)
    if (l.name == effort) return l.prefix;
  return Status::invalid_argument("reasoning effort '" + std::string(effort) + "' is not a level of the " +
                                  std::string(encoder_revision_name(revision)) + " chat encoder (its levels: " +
                                  effort_level_names(revision) + ")");
}

}  // namespace dsv4::text

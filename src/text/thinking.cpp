#include "text/thinking.h"

namespace dsv4::text {

Result<ThinkingMode> thinking_mode_named(std::string_view name) {
  if (name == "chat") return ThinkingMode::chat;
  if (name == "thinking") return ThinkingMode::thinking;
  return Status::invalid_argument("thinking_mode must be \"chat\" or \"thinking\"");
}

Status check_effort(EncoderRevision revision, std::string_view effort) {
  return effort_prefix(revision, effort).status();
}

}  // namespace dsv4::text

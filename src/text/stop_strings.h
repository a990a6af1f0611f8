// Stop strings over streamed text: text is released as soon as it can no longer be the start of
// a stop string, so a client never receives part of a stop string, and generation ends at the
// earliest match across all stop strings.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dsv4::text {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text` and returns the part that is safe to emit now. After a match, returns the
  // text before the stop string and stopped() is true; further input is ignored.
  std::string feed(std::string_view text);
  // Generation ended without a match: returns any text still held back.
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace dsv4::text

// Where the messages of a rendered chat open, in token offsets of its prompt: the prefix cache
// snapshots the state there (runtime::GenerationRequest::message_starts), so that the next
// request of a conversation, which repeats the earlier messages but rewrites the end (earlier
// reasoning dropped, reminders inserted: spec §7.3, PROMPT-FORMAT §3), resumes at the last
// message it shares.
//
// A message opens at its role token (`<｜User｜>`, `<｜Assistant｜>`, `<｜latest_reminder｜>`;
// tool results are written inside user turns). These are added tokens, which the tokenizer
// never merges with their neighbours, so the offsets are exact whatever the text around them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "text/tokenizer.h"

namespace dsv4::text {

class MessageStarts {
 public:
  explicit MessageStarts(const Tokenizer& tok);
  // The offsets i > 0 of ids where ids[i] is a role token, ascending.
  std::vector<int64_t> find(std::span<const int32_t> ids) const;

 private:
  std::vector<int32_t> role_ids_;
};

}  // namespace dsv4::text

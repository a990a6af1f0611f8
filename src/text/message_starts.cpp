#include "text/message_starts.h"

#include <algorithm>

#include "text/chat_tokens.h"

namespace dsv4::text {

MessageStarts::MessageStarts(const Tokenizer& tok) {
  for (std::string_view role : {chat::kUser, chat::kAssistant, chat::kLatestReminder})
    if (std::optional<int32_t> id = tok.token_id(role)) role_ids_.push_back(*id);
}

std::vector<int64_t> MessageStarts::find(std::span<const int32_t> ids) const {
  std::vector<int64_t> starts;
  for (size_t i = 1; i < ids.size(); ++i)
    if (std::find(role_ids_.begin(), role_ids_.end(), ids[i]) != role_ids_.end()) starts.push_back(int64_t(i));
  return starts;
}

}  // namespace dsv4::text

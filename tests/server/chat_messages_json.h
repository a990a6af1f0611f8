// Typed chat messages (what the API parsers produce) as OpenAI-shaped JSON, so a test can state
// a converted conversation as one literal. Keys are sorted (nlohmann::json): a comparison does
// not depend on the order they are written in.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "text/chat_encoding.h"

namespace dsv4::server {

inline nlohmann::json messages_json(const std::vector<text::ChatMessage>& messages) {
  nlohmann::json out = nlohmann::json::array();
  for (const text::ChatMessage& m : messages) {
    nlohmann::json j = {{"role", m.role}, {"content", m.content}};
    if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    for (const text::ToolCall& c : m.tool_calls)
      j["tool_calls"].push_back(
          {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    if (m.prefix) j["prefix"] = true;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace dsv4::server

#include "server/api.h"

namespace dsv4::server {

Status check_tool_choice_name(const ChatRequest& r, std::string_view noun) {
  if (text::find_tool(r.tools, r.tool_choice_name)) return {};
  return Status::invalid_argument("'tool_choice' names the " + std::string(noun) + " '" + r.tool_choice_name +
                                  "', which is not in 'tools'");
}

}  // namespace dsv4::server

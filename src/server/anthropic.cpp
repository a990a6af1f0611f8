#include "server/anthropic.h"

#include <algorithm>

#include "server/json_fields.h"
#include "server/structured_output.h"
#include "server/sse.h"
#include "text/py_json.h"

namespace dsv4::server {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

Status bad(const std::string& m) { return Status::invalid_argument(m); }

std::string at(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

// A block's "type", which every content block must have.
Result<std::string> block_type(const ojson& b, const std::string& where) {
  if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
    return bad("'" + where + "' must be an object with a string 'type'");
  return b["type"].get<std::string>();
}

Result<std::string> block_text(const ojson& b, const std::string& where) {
  if (!b.contains("text") || !b["text"].is_string()) return bad("'" + where + ".text' must be a string");
  return b["text"].get<std::string>();
}

Result<std::string> text_block(const ojson& b, const std::string& where) {
  DSV4_ASSIGN_OR_RETURN(std::string type, block_type(b, where));
  if (type != "text") return bad("'" + where + ".type' must be \"text\" (got '" + type + "')");
  return block_text(b, where);
}

// Text content (a string, or text blocks) as one message's text.
Result<std::string> text_content(const ojson& c, const std::string& where) {
  DSV4_ASSIGN_OR_RETURN(auto parts, text_parts(c, where, "text blocks", text_block));
  return join_text_parts(parts);
}

Status unsupported_block(const std::string& type, const std::string& where) {
  return bad("'" + where + "': content blocks of type '" + type + "' are not supported by this server");
}

text::ChatMessage message(std::string role, std::string content) {
  text::ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

// One user message: text blocks -> user messages, tool_result blocks -> tool messages, in order.
Status convert_user(const ojson& content, const std::string& where, std::vector<text::ChatMessage>& out) {
  if (content.is_string()) {
    out.push_back(message("user", content.get<std::string>()));
    return {};
  }
  if (!content.is_array()) return bad("'" + where + "' must be a string or an array of content blocks");
  std::vector<std::string> text_parts;
  auto flush_text = [&] {
    if (text_parts.empty()) return;
    out.push_back(message("user", join_text_parts(text_parts)));
    text_parts.clear();
  };
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string w = at(where, i);
    const ojson& b = content[i];
    DSV4_ASSIGN_OR_RETURN(std::string type, block_type(b, w));
    if (type == "text") {
      DSV4_ASSIGN_OR_RETURN(std::string text, block_text(b, w));
      text_parts.push_back(std::move(text));
    } else if (type == "tool_result") {
      if (!b.contains("tool_use_id") || !b["tool_use_id"].is_string())
        return bad("'" + w + ".tool_use_id' must be a string");
      text::ChatMessage result = message("tool", "");
      result.tool_call_id = b["tool_use_id"].get<std::string>();
      if (b.contains("content") && !b["content"].is_null()) {
        DSV4_ASSIGN_OR_RETURN(result.content, text_content(b["content"], w + ".content"));
      }
      if (b.contains("is_error") && !b["is_error"].is_null() && !b["is_error"].is_boolean())
        return bad("'" + w + ".is_error' must be a boolean");
      flush_text();
      out.push_back(std::move(result));
    } else {
      return unsupported_block(type, w);
    }
  }
  flush_text();
  return {};
}

// One assistant message: text -> content, thinking -> reasoning_content, tool_use -> tool_calls.
Status convert_assistant(const ojson& content, const std::string& where, std::vector<text::ChatMessage>& out) {
  text::ChatMessage m = message("assistant", "");
  if (content.is_string()) {
    m.content = content.get<std::string>();
    out.push_back(std::move(m));
    return {};
  }
  if (!content.is_array()) return bad("'" + where + "' must be a string or an array of content blocks");
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string w = at(where, i);
    const ojson& b = content[i];
    DSV4_ASSIGN_OR_RETURN(std::string type, block_type(b, w));
    if (type == "text") {
      DSV4_ASSIGN_OR_RETURN(std::string t, block_text(b, w));
      m.content += t;
    } else if (type == "thinking") {
      if (!b.contains("thinking") || !b["thinking"].is_string()) return bad("'" + w + ".thinking' must be a string");
      m.reasoning_content += b["thinking"].get<std::string>();
    } else if (type == "redacted_thinking") {
      // Opaque to this server: there is nothing to render.
    } else if (type == "tool_use") {
      if (!b.contains("id") || !b["id"].is_string()) return bad("'" + w + ".id' must be a string");
      if (!b.contains("name") || !b["name"].is_string() || !valid_tool_name(b["name"].get_ref<const std::string&>()))
        return bad("'" + w + ".name' must be a tool name");
      const ojson input = b.contains("input") && !b["input"].is_null() ? b["input"] : ojson::object();
      if (!input.is_object()) return bad("'" + w + ".input' must be an object");
      // The arguments as the official encoder writes an object (Python's json.dumps): their key
      // order stays through the DSML rendering.
      m.tool_calls.push_back({b["id"].get<std::string>(), b["name"].get<std::string>(), text::py_json_dumps(input)});
    } else {
      return unsupported_block(type, w);
    }
  }
  out.push_back(std::move(m));
  return {};
}

Status read_tools(const ojson& tools, ChatRequest& r) {
  if (!tools.is_array()) return bad("'tools' must be an array");
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string w = at("tools", i);
    const ojson& t = tools[i];
    if (!t.is_object()) return bad("'" + w + "' must be an object");
    if (t.contains("type") && !t["type"].is_null() && t["type"] != "custom")
      return bad("'" + w + ".type': server tools ('" + t["type"].dump() + "') are not supported; give custom tools");
    if (!t.contains("name") || !t["name"].is_string() || !valid_tool_name(t["name"].get_ref<const std::string&>()))
      return bad("'" + w + ".name' must be a non-empty tool name without quotes, '<', '>' or newlines");
    if (!t.contains("input_schema") || !t["input_schema"].is_object())
      return bad("'" + w + ".input_schema' must be an object (a JSON schema)");
    text::ToolDefinition tool;
    tool.name = t["name"];
    tool.parameters = t["input_schema"];
    DSV4_TRY(read_tool_strict(t, w, w + ".input_schema", tool));
    if (t.contains("description") && !t["description"].is_null()) {
      if (!t["description"].is_string()) return bad("'" + w + ".description' must be a string");
      tool.description = t["description"].get<std::string>();
    }
    r.tools.push_back(std::move(tool));
  }
  return {};
}

Status read_tool_choice(const ojson& c, ChatRequest& r) {
  const std::string what = "'tool_choice' must be {\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}";
  if (!c.is_object() || !c.contains("type") || !c["type"].is_string()) return bad(what);
  const std::string type = c["type"];
  if (type == "auto") r.tool_choice = ToolChoice::auto_;
  else if (type == "any") r.tool_choice = ToolChoice::required;
  else if (type == "none") r.tool_choice = ToolChoice::none;
  else if (type == "tool") r.tool_choice = ToolChoice::named;
  else return bad(what);
  // disable_parallel_tool_use is accepted and ignored (as DeepSeek's API does).
  if (c.contains("disable_parallel_tool_use") && !c["disable_parallel_tool_use"].is_null() &&
      !c["disable_parallel_tool_use"].is_boolean())
    return bad("'tool_choice.disable_parallel_tool_use' must be a boolean");
  if (r.tool_choice == ToolChoice::named) {
    if (!c.contains("name") || !c["name"].is_string()) return bad("'tool_choice.name' must be a string");
    r.tool_choice_name = c["name"];
    DSV4_TRY(check_tool_choice_name(r, "tool"));
  }
  if ((r.tool_choice == ToolChoice::required || r.tool_choice == ToolChoice::named) && r.tools.empty())
    return bad("'tool_choice' of type '" + type + "' requires 'tools'");
  return {};
}

// thinking / output_config -> the thinking mode. Anthropic's semantics: the model thinks only
// when `thinking` is enabled or adaptive (issue #16: Claude Code leaves it out for its quick
// side requests, which then get no reasoning, as from Anthropic; DeepSeek's own Anthropic
// endpoint thinks by default, the OpenAI endpoints here keep that default). Returns whether
// thinking is on (a prefill is refused then: it continues an answer, which has no reasoning).
Result<bool> read_thinking(const ojson& j, text::EncoderRevision revision, ChatRequest& r) {
  bool explicit_on = false;
  r.thinking.mode = ThinkingMode::chat;
  if (auto it = j.find("thinking"); it != j.end() && !it->is_null()) {
    const std::string what = "'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": N} or {\"type\": \"disabled\"}";
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) return bad(what);
    const std::string type = (*it)["type"];
    if (type == "disabled") {
      r.thinking.mode = ThinkingMode::chat;
    } else if (type == "enabled" || type == "adaptive") {
      explicit_on = true;
      r.thinking.mode = ThinkingMode::thinking;
      int64_t budget = 0;
      DSV4_TRY(read_int(*it, "budget_tokens", budget));
      if (it->contains("budget_tokens") && !(*it)["budget_tokens"].is_null()) {
        if (budget < 1) return bad("'thinking.budget_tokens' must be at least 1");
        if (r.gen.max_tokens > 0 && budget >= r.gen.max_tokens)
          return bad("'thinking.budget_tokens' must be less than 'max_tokens'");
        r.thinking.budget = budget;
      }
    } else {
      return bad(what);
    }
  }
  if (auto it = j.find("output_config"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'output_config' must be an object");
    DSV4_TRY(check_known_fields(*it, {"effort", "format"}, ApiWording::anthropic));
    if (auto f = it->find("format"); f != it->end() && !f->is_null()) {
      DSV4_ASSIGN_OR_RETURN(r.output, parse_anthropic_format(*f, "output_config.format"));
    }
    // effort: the level DeepSeek's own API maps it to for the served model's encoder, as for
    // reasoning_effort in openai.cpp (Anthropic's "medium" -> high). It does not switch thinking
    // on: chat mode renders no effort prefix.
    std::string effort;
    DSV4_TRY(read_string(*it, "effort", effort));
    DSV4_ASSIGN_OR_RETURN(r.thinking.effort, effort_level("output_config.effort", effort, revision));
  }
  return explicit_on;
}

// context_management (Claude Code sends {"edits": [{"type": "clear_thinking_20251015", "keep":
// "all"}]} with thinking on). The chat encoder already clears the thinking of turns before the
// last user message, which is the strategy's default; keep "all" renders it all instead. Other
// edits (clearing tool results) are refused: the server never rewrites a conversation.
Status read_context_management(const ojson& c, bool thinking_on, ChatRequest& r) {
  if (!c.is_object()) return bad("'context_management' must be an object");
  DSV4_TRY(check_known_fields(c, {"edits"}, ApiWording::anthropic));
  if (!c.contains("edits") || c["edits"].is_null()) return {};
  if (!c["edits"].is_array()) return bad("'context_management.edits' must be an array");
  for (size_t i = 0; i < c["edits"].size(); ++i) {
    const std::string w = at("context_management.edits", i);
    const ojson& e = c["edits"][i];
    DSV4_ASSIGN_OR_RETURN(std::string type, block_type(e, w));
    if (type != "clear_thinking_20251015")
      return bad("'" + w + ".type': the context edit '" + type +
                 "' is not supported by this server (only clear_thinking_20251015)");
    DSV4_TRY(check_known_fields(e, {"type", "keep"}, ApiWording::anthropic));
    if (!thinking_on) return bad("'" + w + "': clear_thinking_20251015 requires thinking to be enabled or adaptive");
    const auto keep = e.find("keep");
    if (keep == e.end() || keep->is_null()) continue;
    if (*keep == "all") {
      r.keep_thinking = true;
    } else if (!(keep->is_object() && keep->value("type", "") == "thinking_turns" && keep->contains("value") &&
                 (*keep)["value"] == 1)) {
      return bad("'" + w + ".keep' must be \"all\" or {\"type\": \"thinking_turns\", \"value\": 1}: the "
                 "chat encoder keeps the thinking of the current turn only, or all of it");
    }
  }
  return {};
}

}  // namespace

Result<ChatRequest> parse_messages_request(std::string_view body, text::EncoderRevision revision, bool count_tokens) {
  DSV4_ASSIGN_OR_RETURN(ojson j, parse_json_object(body));
  // The Messages API's fields. count_tokens takes the same body (a client may send the request
  // it is about to make): the sampling fields cannot change a token count.
  DSV4_TRY(check_known_fields(j,
                              {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                               "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
                               "context_management", "mcp_servers", "container", "service_tier"},
                              ApiWording::anthropic));
  for (const char* key : {"mcp_servers", "container"})
    if (j.contains(key) && !j[key].is_null())
      return bad(std::string("'") + key + "' is not supported by this server (no MCP connector or code container)");
  std::string service_tier;   // "auto" / "standard_only": one tier here
  DSV4_TRY(read_string(j, "service_tier", service_tier));
  ChatRequest r;
  GenerationOptions& g = r.gen;
  DSV4_TRY(read_string(j, "model", g.model));
  if (g.model.empty()) return bad("'model' is required");
  if (!count_tokens) {
    if (!j.contains("max_tokens") || j["max_tokens"].is_null()) return bad("'max_tokens' is required");
    DSV4_TRY(read_int(j, "max_tokens", g.max_tokens));
    if (g.max_tokens < 1) return bad("'max_tokens' must be at least 1");
  }
  DSV4_TRY(read_number(j, "temperature", g.sampling.temperature));
  DSV4_TRY(read_number(j, "top_p", g.sampling.top_p));
  int64_t top_k = 0;
  DSV4_TRY(read_int(j, "top_k", top_k));
  if (top_k < 0 || top_k > (int64_t(1) << 30)) return bad("'top_k' must be >= 0");
  g.sampling.top_k = int(top_k);
  DSV4_TRY(runtime::validate_sampling(g.sampling));
  DSV4_TRY(read_stop_strings(j, "stop_sequences", g.stop));
  DSV4_TRY(read_bool(j, "stream", g.stream));
  if (auto it = j.find("metadata"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'metadata' must be an object");
    DSV4_TRY(check_known_fields(*it, {"user_id"}, ApiWording::anthropic));
    DSV4_TRY(read_string(*it, "user_id", g.user));
  }

  // system, then the conversation.
  if (auto it = j.find("system"); it != j.end() && !it->is_null()) {
    DSV4_ASSIGN_OR_RETURN(std::string sys, text_content(*it, "system"));
    r.messages.push_back(message("system", std::move(sys)));
  }
  if (!j.contains("messages") || !j["messages"].is_array()) return bad("'messages' must be an array");
  const ojson& msgs = j["messages"];
  if (msgs.empty()) return bad("'messages' must not be empty");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string w = at("messages", i);
    const ojson& m = msgs[i];
    if (!m.is_object()) return bad("'" + w + "' must be an object");
    if (!m.contains("role") || !m["role"].is_string()) return bad("'" + w + ".role' must be a string");
    const std::string role = m["role"];
    if (!m.contains("content")) return bad("'" + w + ".content' is required");
    if (role == "user") {
      DSV4_TRY(convert_user(m["content"], w + ".content", r.messages));
    } else if (role == "assistant") {
      DSV4_TRY(convert_assistant(m["content"], w + ".content", r.messages));
    } else if (role == "system") {
      // Not in Anthropic's API, but sent by clients and proxies that carry OpenAI-style system
      // turns (reminders, mode switches) mid-conversation. It stays a system message where it
      // stands, rendered as the official encoder renders any system message (its text, no
      // role marker): the same prompt /v1/chat/completions gives the same conversation. The
      // `latest_reminder` role was the alternative; the spec documents only its token, not
      // how DeepSeek's API fills it, so it is not guessed at here.
      DSV4_ASSIGN_OR_RETURN(std::string text, text_content(m["content"], w + ".content"));
      r.messages.push_back(message("system", std::move(text)));
    } else {
      return bad("'" + w + ".role' must be \"user\", \"assistant\" or \"system\" (got '" + role + "')");
    }
  }

  // System messages that end `messages` follow the user message they are context for (Claude
  // Code sends its environment so). The encoding opens the assistant's turn only right after a
  // user message (spec §7.2), so they are rendered just before that user message instead.
  size_t tail = r.messages.size();
  while (tail > 0 && r.messages[tail - 1].role == "system") --tail;
  if (tail < r.messages.size() && tail > 0 && r.messages[tail - 1].role == "user")
    std::rotate(r.messages.begin() + std::ptrdiff_t(tail - 1), r.messages.begin() + std::ptrdiff_t(tail), r.messages.end());
  if (r.messages.empty() || r.messages.back().role == "system") return bad("'messages' holds no content");
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) DSV4_TRY(read_tools(*it, r));
  if (auto it = j.find("tool_choice"); it != j.end() && !it->is_null()) DSV4_TRY(read_tool_choice(*it, r));
  DSV4_ASSIGN_OR_RETURN(bool thinking_asked, read_thinking(j, revision, r));
  if (auto it = j.find("context_management"); it != j.end() && !it->is_null())
    DSV4_TRY(read_context_management(*it, r.thinking.on(), r));

  // A last assistant message is a prefill: the answer continues it, without reasoning.
  if (r.messages.back().role == "assistant") {
    if (thinking_asked) return bad("a final assistant message (prefill) cannot be combined with thinking");
    if (!r.messages.back().tool_calls.empty())
      return bad("the final assistant message ends with tool_use: send the tool_result in a user message");
    r.messages.back().prefix = true;
    r.thinking.mode = ThinkingMode::chat;
    r.thinking.budget = 0;
  }
  DSV4_TRY(check_structured_output(r, "output_config.format"));
  return r;
}

std::string messages_stop_reason(runtime::FinishReason finish, bool stop_sequence, bool tool_use) {
  if (stop_sequence) return "stop_sequence";
  switch (finish) {
    case runtime::FinishReason::stop: return tool_use ? "tool_use" : "end_turn";
    case runtime::FinishReason::length: return "max_tokens";
    case runtime::FinishReason::cancelled: return "end_turn";
    case runtime::FinishReason::error: return "";
  }
  return "";
}

json messages_usage(int64_t prompt_tokens, int64_t cached_tokens, int64_t output_tokens) {
  return {{"input_tokens", prompt_tokens - cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", cached_tokens},
          {"output_tokens", output_tokens}};
}

// ---- MessageBlocks ----

void MessageBlocks::open(Kind kind, json block, std::vector<json>& events) {
  close(events);
  open_ = kind;
  content_.push_back(block);
  events.push_back({{"type", "content_block_start"}, {"index", content_.size() - 1}, {"content_block", std::move(block)}});
}

void MessageBlocks::close(std::vector<json>& events) {
  if (open_ == Kind::none) return;
  if (open_ == Kind::tool_use) {
    // The model writes these arguments: nested too deep, they would overflow the stack of the
    // recursive dump (as a request body could), so they are dropped like unparsable ones.
    json input = json_nests_deeper_than(tool_input_, kMaxJsonDepth)
                     ? json()
                     : json::parse(tool_input_, nullptr, /*allow_exceptions=*/false);
    content_.back()["input"] = input.is_object() ? input : json::object();
    tool_input_.clear();
  }
  events.push_back({{"type", "content_block_stop"}, {"index", content_.size() - 1}});
  open_ = Kind::none;
}

void MessageBlocks::delta(json d, std::vector<json>& events) {
  events.push_back({{"type", "content_block_delta"}, {"index", content_.size() - 1}, {"delta", std::move(d)}});
}

std::vector<json> MessageBlocks::push(const ChatDelta& d) {
  std::vector<json> ev;
  if (!d.reasoning.empty()) {
    if (open_ != Kind::thinking) open(Kind::thinking, {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}, ev);
    content_.back()["thinking"] = content_.back()["thinking"].get<std::string>() + d.reasoning;
    delta({{"type", "thinking_delta"}, {"thinking", d.reasoning}}, ev);
  }
  if (!d.content.empty()) {
    if (open_ != Kind::text) open(Kind::text, {{"type", "text"}, {"text", ""}}, ev);
    content_.back()["text"] = content_.back()["text"].get<std::string>() + d.content;
    delta({{"type", "text_delta"}, {"text", d.content}}, ev);
  }
  for (const ToolCallDelta& t : d.tool_calls) {
    if (!t.id.empty()) {
      // Anthropic's ids read "toolu_…"; the parser's read "call_…".
      std::string id = t.id;
      if (id.rfind("call_", 0) == 0) id = "toolu_" + id.substr(5);
      open(Kind::tool_use, {{"type", "tool_use"}, {"id", id}, {"name", t.name}, {"input", json::object()}}, ev);
    }
    if (open_ == Kind::tool_use && !t.arguments.empty()) {
      tool_input_ += t.arguments;
      delta({{"type", "input_json_delta"}, {"partial_json", t.arguments}}, ev);
    }
  }
  return ev;
}

std::vector<json> MessageBlocks::finish() {
  std::vector<json> ev;
  close(ev);
  if (content_.empty()) {
    open(Kind::text, {{"type", "text"}, {"text", ""}}, ev);
    close(ev);
  }
  return ev;
}

json message_json(const std::string& id, const std::string& model, const json& content, const std::string& stop_reason,
                  const std::string& stop_sequence, const json& usage) {
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"content", content},
          {"model", model},
          {"stop_reason", stop_reason.empty() ? json(nullptr) : json(stop_reason)},
          {"stop_sequence", stop_sequence.empty() ? json(nullptr) : json(stop_sequence)},
          {"usage", usage}};
}

std::string messages_sse(const json& event) {
  return sse_event(event["type"].get<std::string>(),
                   event.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace dsv4::server

#include "text/chat_encoding.h"

#include <algorithm>
#include <map>

#include "text/chat_tokens.h"
#include "text/py_json.h"

namespace dsv4::text {
namespace {

using ojson = nlohmann::ordered_json;

// Python truthiness, which the official encoder applies to "response_format" (and to "tools":
// here an empty list): null, [], {}, "", false and 0 mean "absent".
bool truthy(const ojson& v) {
  if (v.is_null()) return false;
  if (v.is_array() || v.is_object() || v.is_string()) return !v.empty();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  return true;
}

// ---- JSON -> messages ----

bool is_image_part(const std::string& type) {
  return type == "image_url" || type == "image" || type == "input_image";  // OpenAI, Anthropic, Responses
}

// OpenAI content: a string, null, or a list of parts. Text parts keep their text; any other
// part type renders as "[Unsupported TYPE]" (PROMPT-FORMAT §5, §7). Parts are joined by "\n\n".
// Image parts set *has_image (ChatMessage::has_image).
Result<std::string> flatten_content(const ojson& c, const std::string& where, bool* has_image) {
  if (c.is_null()) return std::string();
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) return Status::invalid_argument(where + ": content must be a string, null or an array of parts");
  std::string out;
  bool first = true;
  for (const auto& part : c) {
    std::string piece;
    if (part.is_string()) {
      piece = part.get<std::string>();
    } else if (part.is_object() && part.contains("type") && part["type"].is_string()) {
      const std::string type = part["type"];
      if (type == "text") {
        if (!part.contains("text") || !part["text"].is_string())
          return Status::invalid_argument(where + ": text part without a string \"text\"");
        piece = part["text"];
      } else {
        piece = "[Unsupported " + type + "]";
        *has_image = *has_image || is_image_part(type);
      }
    } else {
      return Status::invalid_argument(where + ": content part must be an object with a \"type\"");
    }
    if (!first) out += "\n\n";
    first = false;
    out += piece;
  }
  return out;
}

Result<std::string> optional_string(const ojson& m, const char* key, const std::string& where) {
  if (!m.contains(key) || m[key].is_null()) return std::string();
  if (!m[key].is_string()) return Status::invalid_argument(where + ": \"" + key + "\" must be a string");
  return m[key].get<std::string>();
}

Result<ToolCall> tool_call_from_json(const ojson& c, const std::string& where) {
  if (!c.is_object()) return Status::invalid_argument(where + ": tool call must be an object");
  ToolCall tc;
  DSV4_ASSIGN_OR_RETURN(tc.id, optional_string(c, "id", where));
  // OpenAI shape {"type": "function", "function": {"name", "arguments"}}; a flat
  // {"name", "arguments"} is accepted too.
  const ojson& f = (c.contains("function") && c["function"].is_object()) ? c["function"] : c;
  if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
    return Status::invalid_argument(where + ": tool call without a function name");
  tc.name = f["name"];
  if (!f.contains("arguments") || f["arguments"].is_null()) {
    tc.arguments = "{}";
  } else if (f["arguments"].is_string()) {
    tc.arguments = f["arguments"];
  } else if (f["arguments"].is_object()) {
    tc.arguments = py_json_dumps(f["arguments"]);
  } else {
    return Status::invalid_argument(where + ": tool call arguments must be a JSON string or object");
  }
  return tc;
}

// ---- rendering helpers ----

// The tools section (chat_tokens.h): the intro and the example block in the revision's tags,
// then the rules and the schemas.
std::string tools_section(const std::vector<ToolDefinition>& tools, const chat::DsmlTags& tags) {
  std::string schemas;
  for (size_t i = 0; i < tools.size(); ++i) {
    if (i) schemas += "\n";
    schemas += tool_schema_line(tools[i]);
  }
  std::string out(chat::kToolsIntro);
  out += tags.calls_open;
  out += chat::kToolsIntroEnd;
  out += tags.calls_open;
  out += "\n";
  out += tags.invoke_open_prefix;
  out += "$TOOL_NAME\">\n";
  out += tags.param_open_prefix;
  out += "$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE";
  out += tags.param_close;
  out += "\n...\n";
  out += tags.invoke_close;
  out += "\n";
  out += tags.invoke_open_prefix;
  out += "$TOOL_NAME2\">\n...\n";
  out += tags.invoke_close;
  out += "\n";
  out += tags.calls_close;
  out += chat::kToolsRules;
  out += schemas;
  out += chat::kToolsSectionAfter;
  return out;
}

void append_tools_and_format(std::string& out, const ChatMessage& m, const chat::DsmlTags& tags) {
  if (!m.tools.empty()) {
    out += "\n\n";
    out += tools_section(m.tools, tags);
  }
  if (truthy(m.response_format)) {
    out += "\n\n";
    out += chat::kResponseFormatPrefix;
    out += py_json_dumps(m.response_format);
  }
}

const std::map<std::string, std::string_view>& task_tokens() {
  static const std::map<std::string, std::string_view> t = {
      {"action", "<｜action｜>"}, {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
      {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"},  {"read_url", "<｜read_url｜>"},
  };
  return t;
}

// One rendered turn after preprocessing. A user turn may hold several parts (merged user
// messages and tool results); tool results carry the call id used for ordering.
struct Part {
  bool tool_result = false;
  std::string call_id;
  std::string text;
};
struct Turn {
  ChatMessage msg;          // role is never "tool" here
  std::vector<Part> parts;  // user turns only
};

std::string user_text(const Turn& t) {
  std::string out;
  for (size_t i = 0; i < t.parts.size(); ++i) {
    if (i) out += "\n\n";
    if (t.parts[i].tool_result) {
      out += chat::kToolResultOpen;
      out += t.parts[i].text;
      out += chat::kToolResultClose;
    } else {
      out += t.parts[i].text;
    }
  }
  return out;
}

// Tool results inside a user turn follow the order of the calls of the most recent assistant
// turn that made calls (PROMPT-FORMAT §5). As in the official encoder, an id that is not among
// those calls sorts as position 0, the sort is stable, and a turn with a single result or no
// known call order is left alone.
void sort_tool_results(std::vector<Turn>& turns) {
  std::vector<std::pair<std::string, size_t>> order;  // call id -> position; later ids win
  auto position = [&](const std::string& id) -> size_t {
    size_t pos = 0;
    for (const auto& [cid, p] : order)
      if (cid == id) pos = p;
    return pos;
  };
  for (Turn& t : turns) {
    if (t.msg.role == "assistant" && !t.msg.tool_calls.empty()) {
      order.clear();
      for (size_t k = 0; k < t.msg.tool_calls.size(); ++k)
        if (!t.msg.tool_calls[k].id.empty()) order.emplace_back(t.msg.tool_calls[k].id, k);
    } else if (t.msg.role == "user") {
      std::vector<size_t> slots;
      for (size_t i = 0; i < t.parts.size(); ++i)
        if (t.parts[i].tool_result) slots.push_back(i);
      if (slots.size() < 2 || order.empty()) continue;
      std::vector<Part> results;
      for (size_t i : slots) results.push_back(t.parts[i]);
      std::stable_sort(results.begin(), results.end(),
                       [&](const Part& a, const Part& b) { return position(a.call_id) < position(b.call_id); });
      for (size_t i = 0; i < slots.size(); ++i) t.parts[slots[i]] = std::move(results[i]);
    }
  }
}

Result<std::vector<Turn>> preprocess(const std::vector<ChatMessage>& in, const ChatOptions& opt) {
  std::vector<ChatMessage> msgs = in;
  // Request-level tools / response_format belong to the leading system message.
  if (!opt.tools.empty() || truthy(opt.response_format)) {
    if (msgs.empty() || msgs[0].role != "system") {
      ChatMessage sys;
      sys.role = "system";
      msgs.insert(msgs.begin(), std::move(sys));
    }
    if (!opt.tools.empty()) {
      if (!msgs[0].tools.empty()) return Status::invalid_argument("tools given both in options and on the system message");
      msgs[0].tools = opt.tools;
    }
    if (truthy(opt.response_format)) {
      if (truthy(msgs[0].response_format))
        return Status::invalid_argument("response_format given both in options and on the system message");
      msgs[0].response_format = opt.response_format;
    }
  }
  std::vector<Turn> turns;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    const std::string where = "message " + std::to_string(i);
    static const char* kRoles[] = {"system", "user", "assistant", "tool", "developer", "latest_reminder"};
    if (std::find(std::begin(kRoles), std::end(kRoles), m.role) == std::end(kRoles))
      return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
    if (!m.tools.empty() && m.role != "system" && m.role != "developer")
      return Status::invalid_argument(where + ": only system and developer messages may carry tools");
    if (!m.tool_calls.empty() && m.role != "assistant")
      return Status::invalid_argument(where + ": only assistant messages may carry tool_calls");
    if (!m.task.empty() && !task_tokens().count(m.task))
      return Status::invalid_argument(where + ": unknown task '" + m.task + "'");
    if (m.role == "developer" && m.content.empty())
      return Status::invalid_argument(where + ": developer message with empty content");

    // Tool messages and user messages become parts of user turns (official merge rules): a tool
    // result joins any user turn right before it; a user text joins a user turn right before it
    // unless that turn carries a task. Otherwise a new user turn starts (keeping task/prefix).
    if (m.role == "tool" || m.role == "user") {
      Part part;
      part.tool_result = m.role == "tool";
      part.call_id = m.tool_call_id;
      part.text = m.content;
      const bool after_user = !turns.empty() && turns.back().msg.role == "user";
      if (after_user && (m.role == "tool" || turns.back().msg.task.empty())) {
        turns.back().parts.push_back(std::move(part));
      } else {
        Turn t;
        if (m.role == "user") t.msg = m;
        t.msg.role = "user";
        t.msg.content.clear();
        t.parts.push_back(std::move(part));
        turns.push_back(std::move(t));
      }
      continue;
    }
    Turn t;
    t.msg = m;
    turns.push_back(std::move(t));
  }
  sort_tool_results(turns);
  return turns;
}

// V4.1 writes a system message after the first one as its own turn, <｜System｜> + content
// (v4.1 §11.2 rule 2). In a continuation no message is the first one.
bool mid_system(const std::vector<Turn>& turns, size_t k, const ChatOptions& opt) {
  return opt.revision == EncoderRevision::v41 && turns[k].msg.role == "system" && (k > 0 || opt.continuation);
}

// The last turn that asks for an answer: a user or developer turn, or (V4.1) a mid-conversation
// system turn, which counts as a user turn (v4.1 §11.2 rule 2).
int last_user_index(const std::vector<Turn>& turns, const ChatOptions& opt) {
  for (size_t k = turns.size(); k-- > 0;)
    if (turns[k].msg.role == "user" || turns[k].msg.role == "developer" || mid_system(turns, k, opt))
      return static_cast<int>(k);
  return -1;
}

// V4.1 is rendered for a text-only forward here: an image would become a placeholder that the
// vision path expands (v4.1 §11.5, §12), and text holding the placeholder is refused by the
// official encoder, since it would tokenize to the image id.
Status check_v41_text_only(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string where = "message " + std::to_string(i);
    if (m.has_image)
      return Status::invalid_argument(where + ": images are not supported: DeepSeek-V4.1 reads them through its "
                                      "vision path (v4.1 §12), which dsv4 does not implement");
    if (m.content.find(chat::kImagePlaceholder) != std::string::npos ||
        m.reasoning_content.find(chat::kImagePlaceholder) != std::string::npos)
      return Status::invalid_argument(where + ": text contains the image placeholder " +
                                      std::string(chat::kImagePlaceholder) + ", which the V4.1 encoder refuses");
  }
  return Status::ok_status();
}

// The arguments of a call as the object whose members become parameters. Arguments that are not
// a JSON object become one string parameter named "arguments". V4.1 also decodes a JSON string
// that holds the object's text (double-encoded arguments; v4.1 §11.3: "up to twice").
ojson call_arguments(const ToolCall& c, EncoderRevision revision) {
  ojson args = ojson::parse(c.arguments, nullptr, false);
  if (revision == EncoderRevision::v41 && !args.is_discarded() && args.is_string())
    args = ojson::parse(args.get<std::string>(), nullptr, false);
  if (args.is_discarded() || !args.is_object()) {
    args = ojson::object();
    args["arguments"] = c.arguments;
  }
  return args;
}

}  // namespace

std::string render_tool_calls(const std::vector<ToolCall>& calls, EncoderRevision revision) {
  const chat::DsmlTags& tags = dsml_tags(revision);
  std::string out(tags.calls_open);
  out += "\n";
  for (size_t i = 0; i < calls.size(); ++i) {
    const ToolCall& c = calls[i];
    if (i) out += "\n";
    out += tags.invoke_open_prefix;
    out += c.name;
    out += "\">\n";
    const ojson args = call_arguments(c, revision);
    bool first = true;
    for (auto it = args.begin(); it != args.end(); ++it) {
      if (!first) out += "\n";
      first = false;
      const bool is_str = it.value().is_string();
      out += tags.param_open_prefix;
      out += it.key();
      out += is_str ? "\" string=\"true\">" : "\" string=\"false\">";
      out += is_str ? it.value().get<std::string>() : py_json_dumps(it.value());
      out += tags.param_close;
    }
    out += "\n";
    out += tags.invoke_close;
  }
  out += "\n";
  out += tags.calls_close;
  return out;
}

Result<std::string> render_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opt) {
  if (messages.empty() && opt.tools.empty() && !truthy(opt.response_format))
    return Status::invalid_argument("no messages to render");
  const bool v41 = opt.revision == EncoderRevision::v41;
  if (v41) DSV4_TRY(check_v41_text_only(messages));
  DSV4_ASSIGN_OR_RETURN(std::vector<Turn> turns, preprocess(messages, opt));
  DSV4_ASSIGN_OR_RETURN(std::string prefix, effort_prefix(opt.revision, opt.thinking.effort));
  const chat::DsmlTags& tags = dsml_tags(opt.revision);

  const bool thinking = opt.thinking.on();
  bool any_tools = false;
  for (const auto& t : turns) any_tools = any_tools || !t.msg.tools.empty();
  // Old reasoning is dropped only in thinking mode, and never when tools are declared.
  const bool drop = thinking && opt.drop_thinking && !any_tools;
  if (drop) {
    // Developer messages before the last user message are dropped entirely (PROMPT-FORMAT §3).
    const int last_user = last_user_index(turns, opt);
    std::vector<Turn> kept;
    for (size_t k = 0; k < turns.size(); ++k)
      if (!(turns[k].msg.role == "developer" && static_cast<int>(k) < last_user)) kept.push_back(std::move(turns[k]));
    turns = std::move(kept);
  }
  const int last_user = last_user_index(turns, opt);
  const int n = static_cast<int>(turns.size());

  std::string out;
  if (opt.add_bos) out += chat::kBos;
  // The effort prefix opens the first message (official: message index 0, thinking mode only).
  // V4.1 writes <｜System｜> before it, and before a leading system message in chat mode too
  // (v4.1 §11.2 rule 1).
  if (n > 0 && !opt.continuation) {
    if (v41 && (thinking || turns[0].msg.role == "system")) out += chat::kSystem;
    if (thinking) out += prefix;
  }
  for (int i = 0; i < n; ++i) {
    const ChatMessage& m = turns[i].msg;
    const std::string& role = m.role;
    const bool mid_sys = mid_system(turns, size_t(i), opt);
    if (role == "system") {
      if (mid_sys) out += chat::kSystem;
      out += m.content;
      append_tools_and_format(out, m, tags);
    } else if (role == "latest_reminder") {
      out += chat::kLatestReminder;
      out += m.content;
    } else if (role == "user" || role == "developer") {
      out += chat::kUser;
      out += role == "user" ? user_text(turns[i]) : m.content;
      if (role == "developer") append_tools_and_format(out, m, tags);
    } else {  // assistant
      // An assistant message answering a task never has a reasoning part; otherwise reasoning is
      // rendered in thinking mode unless it is being dropped for turns before the last user.
      const bool answers_task = i > 0 && !turns[i - 1].msg.task.empty();
      if (thinking && !answers_task && (!drop || i > last_user)) {
        out += m.reasoning_content;
        out += chat::kThinkEnd;
      }
      out += m.content;
      if (!m.tool_calls.empty()) {
        out += chat::kBeforeToolCalls;
        out += render_tool_calls(m.tool_calls, opt.revision);
      }
      if (!m.prefix) out += chat::kEos;
    }
    // What follows a message (task token or assistant transition) is only written when the
    // message is the last one or the next is an assistant or latest_reminder message.
    if (i + 1 < n && turns[i + 1].msg.role != "assistant" && turns[i + 1].msg.role != "latest_reminder") continue;
    if (!m.task.empty()) {
      // "action" keeps the Assistant prefix and a mode token in front; other tasks only append
      // their token (PROMPT-FORMAT §6).
      if (m.task == "action") {
        out += chat::kAssistant;
        out += thinking ? chat::kThinkStart : chat::kThinkEnd;
      }
      out += task_tokens().at(m.task);
    } else if (role == "user" || role == "developer" || mid_sys) {
      out += chat::kAssistant;
      out += (thinking && (!drop || i >= last_user)) ? chat::kThinkStart : chat::kThinkEnd;
    }
  }
  return out;
}

Result<std::vector<ChatMessage>> messages_from_json(const nlohmann::ordered_json& arr) {
  if (!arr.is_array()) return Status::invalid_argument("messages must be a JSON array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& j = arr[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!j.is_object()) return Status::invalid_argument(where + " is not an object");
    if (!j.contains("role") || !j["role"].is_string()) return Status::invalid_argument(where + " has no string \"role\"");
    ChatMessage m;
    m.role = j["role"];
    DSV4_ASSIGN_OR_RETURN(m.content, flatten_content(j.value("content", ojson()), where, &m.has_image));
    DSV4_ASSIGN_OR_RETURN(m.reasoning_content, optional_string(j, "reasoning_content", where));
    DSV4_ASSIGN_OR_RETURN(m.tool_call_id, optional_string(j, "tool_call_id", where));
    DSV4_ASSIGN_OR_RETURN(m.name, optional_string(j, "name", where));
    DSV4_ASSIGN_OR_RETURN(m.task, optional_string(j, "task", where));
    if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
      if (!j["tool_calls"].is_array()) return Status::invalid_argument(where + ": tool_calls must be an array");
      for (size_t k = 0; k < j["tool_calls"].size(); ++k) {
        DSV4_ASSIGN_OR_RETURN(ToolCall tc, tool_call_from_json(j["tool_calls"][k], where + ".tool_calls[" + std::to_string(k) + "]"));
        m.tool_calls.push_back(std::move(tc));
      }
    }
    if (j.contains("tools")) {
      DSV4_ASSIGN_OR_RETURN(m.tools, tools_from_json(j["tools"], where + ".tools"));
    }
    if (j.contains("response_format") && !j["response_format"].is_null()) m.response_format = j["response_format"];
    for (const char* key : {"prefix", "wo_eos"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      if (!j[key].is_boolean()) return Status::invalid_argument(where + ": \"" + key + "\" must be a boolean");
      m.prefix = m.prefix || j[key].get<bool>();
    }
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<ChatMessage>> messages_from_json(const nlohmann::json& messages) {
  return messages_from_json(ojson::parse(messages.dump()));
}

Result<ChatOptions> options_from_json(const nlohmann::ordered_json& j, EncoderRevision revision) {
  ChatOptions o;
  o.revision = revision;
  if (j.is_null()) return o;
  if (!j.is_object()) return Status::invalid_argument("options must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k == "thinking_mode") {
      DSV4_ASSIGN_OR_RETURN(o.thinking.mode, thinking_mode_named(v.is_string() ? v.get<std::string>() : ""));
    } else if (k == "reasoning_effort") {
      if (v.is_null()) o.thinking.effort.clear();
      else if (v.is_string()) o.thinking.effort = v.get<std::string>();
      else if (v.is_number_integer()) o.thinking.effort = v.dump();  // V4.1's 1-100 (check_effort checks)
      else return Status::invalid_argument("reasoning_effort must be a string, an integer or null");
    } else if (k == "drop_thinking" || k == "add_bos" || k == "add_default_bos_token" || k == "continuation") {
      if (!v.is_boolean()) return Status::invalid_argument(k + " must be a boolean");
      (k == "drop_thinking" ? o.drop_thinking : k == "continuation" ? o.continuation : o.add_bos) = v.get<bool>();
    } else if (k == "tools") {
      DSV4_ASSIGN_OR_RETURN(o.tools, tools_from_json(v, "tools"));
    } else if (k == "response_format") {
      o.response_format = v;
    } else if (k == "revision") {
      // A non-string names no revision (the error lists the names).
      DSV4_ASSIGN_OR_RETURN(o.revision, encoder_revision_named(v.is_string() ? v.get<std::string>() : std::string()));
    } else {
      return Status::invalid_argument("unknown option '" + k + "'");
    }
  }
  // Validate now so that a bad effort is reported even for chat mode.
  DSV4_TRY(check_effort(o.revision, o.thinking.effort));
  return o;
}

}  // namespace dsv4::text

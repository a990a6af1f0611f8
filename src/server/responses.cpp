#include "server/responses.h"

#include "server/errors.h"
#include "server/json_fields.h"
#include "server/sse.h"
#include "server/structured_output.h"

namespace dsv4::server {

using ojson = nlohmann::ordered_json;

namespace {

Status bad(const std::string& m) { return Status::invalid_argument(m); }

std::string at(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

// A field that must be a string when present (absent and null are fine); `where` names the
// object holding it ("" = the request).
Status check_string(const ojson& j, const char* key, const std::string& where = "") {
  if (auto it = j.find(key); it != j.end() && !it->is_null() && !it->is_string())
    return bad("'" + (where.empty() ? "" : where + ".") + key + "' must be a string");
  return {};
}

Result<std::string> required_string(const ojson& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string()) return bad("'" + where + "." + key + "' must be a string");
  return j[key].get<std::string>();
}

// The text of one content part: input_text / output_text ("text") or refusal ("refusal"). This
// is a text-only model: images, files and audio are refused rather than dropped.
Result<std::string> part_text(const ojson& p, const std::string& where) {
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
    return bad("'" + where + "' must be an object with a string 'type'");
  const std::string type = p["type"];
  if (type == "input_text" || type == "output_text") return required_string(p, "text", where);
  if (type == "refusal") return required_string(p, "refusal", where);
  if (type == "input_image" || type == "input_file" || type == "input_audio")
    return bad("'" + where + "': content parts of type '" + type + "' are not supported by this server (text only)");
  return bad("'" + where + ".type' must be input_text or output_text (got '" + type + "')");
}

// Message content as the texts of its parts (a string is one part).
Result<std::vector<std::string>> content_parts(const ojson& c, const std::string& where) {
  return text_parts(c, where, "content parts", part_text);
}

text::ChatMessage message(std::string role, std::string content) {
  text::ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

// Responses items -> chat messages. An assistant turn is spread over several items (reasoning,
// message, function_call ...): they gather into one assistant message until an item of another
// turn (a user, system or developer message, a function_call_output) or a new reasoning item
// after the answer starts a new one.
class Conversation {
 public:
  explicit Conversation(std::vector<text::ChatMessage>& messages) : out_(messages) {}

  // The request's instructions: the first system text.
  void add_instructions(const std::string& instructions) { add_system({instructions}); }

  Status add(const ojson& item, const std::string& where) {
    if (!item.is_object()) return bad("'" + where + "' must be an object");
    std::string type = "message";  // EasyInputMessage: {role, content} without a type
    if (item.contains("type") && !item["type"].is_null()) {
      if (!item["type"].is_string()) return bad("'" + where + ".type' must be a string");
      type = item["type"];
    }
    if (type == "message") return add_message(item, where);
    if (type == "reasoning") return add_reasoning(item, where);
    if (type == "function_call") return add_call(item, where);
    if (type == "function_call_output") return add_output(item, where);
    if (type == "item_reference")
      return bad("'" + where + "': item references are not supported by this server; send the item itself, or "
                 "continue a stored response with 'previous_response_id'");
    return bad("'" + where + "': items of type '" + type +
               "' are not supported by this server (message, reasoning, function_call, function_call_output)");
  }

  // Ends the conversation: it must hold a message, and end where an answer can follow.
  Status finish() {
    flush();
    size_t turns = 0;
    for (const auto& m : out_) turns += m.role != "system";
    if (turns == 0) return bad("'input' holds no message");
    if (out_.back().role == "assistant")
      return bad("'input' ends with an assistant item: a response follows a user message or a function_call_output");
    return {};
  }

 private:
  Status add_message(const ojson& item, const std::string& where) {
    DSV4_ASSIGN_OR_RETURN(std::string role, required_string(item, "role", where));
    if (!item.contains("content")) return bad("'" + where + ".content' is required");
    if (role != "assistant" && role != "user" && role != "system" && role != "developer")
      return bad("'" + where + ".role' must be one of user, assistant, system, developer (got '" + role + "')");
    DSV4_ASSIGN_OR_RETURN(auto parts, content_parts(item["content"], where + ".content"));
    if (role == "assistant") {
      // Assistant text: the model wrote it as one piece.
      if (!calls_.empty()) flush();
      for (const std::string& p : parts) text_ += p;
      pending_ = true;
      return {};
    }
    flush();
    if (role == "user") {
      out_.push_back(message("user", join_text_parts(parts)));
      return {};
    }
    add_system(std::move(parts));
    return {};
  }

  // Instructions given in a row are one system text (the renderer writes a system message's
  // text as it is, so two in a row would run together).
  void add_system(std::vector<std::string> parts) {
    if (out_.empty() || out_.back().role != "system") {
      system_parts_.clear();
      out_.push_back(message("system", ""));
    }
    for (auto& p : parts) system_parts_.push_back(std::move(p));
    out_.back().content = join_text_parts(system_parts_);
  }

  // The reasoning text is its content (reasoning_text parts); a summary (another server's) is
  // not what the model thought and is not rendered, nor is encrypted_content (opaque).
  Status add_reasoning(const ojson& item, const std::string& where) {
    std::string text;
    if (auto it = item.find("content"); it != item.end() && !it->is_null()) {
      if (!it->is_array()) return bad("'" + where + ".content' must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const ojson& p = (*it)[i];
        const std::string w = at(where + ".content", i);
        if (!p.is_object() || p.value("type", "") != "reasoning_text")
          return bad("'" + w + "' must be {\"type\": \"reasoning_text\", \"text\": ...}");
        DSV4_ASSIGN_OR_RETURN(std::string t, required_string(p, "text", w));
        text += t;
      }
    }
    if (auto it = item.find("summary"); it != item.end() && !it->is_null() && !it->is_array())
      return bad("'" + where + ".summary' must be an array");
    DSV4_TRY(check_string(item, "encrypted_content", where));
    if (!text_.empty() || !calls_.empty()) flush();
    reasoning_ += text;
    pending_ = true;
    return {};
  }

  Status add_call(const ojson& item, const std::string& where) {
    DSV4_ASSIGN_OR_RETURN(std::string call_id, required_string(item, "call_id", where));
    DSV4_ASSIGN_OR_RETURN(std::string name, required_string(item, "name", where));
    if (!valid_tool_name(name)) return bad("'" + where + ".name' must be a tool name without quotes, '<', '>' or newlines");
    DSV4_ASSIGN_OR_RETURN(std::string arguments, required_string(item, "arguments", where));
    // The renderer parses the arguments and recurses over them (text/chat_encoding).
    if (json_nests_deeper_than(arguments, kMaxJsonDepth))
      return bad("'" + where + ".arguments' nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) +
                 " levels");
    calls_.push_back({std::move(call_id), std::move(name), std::move(arguments)});
    pending_ = true;
    return {};
  }

  Status add_output(const ojson& item, const std::string& where) {
    DSV4_ASSIGN_OR_RETURN(std::string call_id, required_string(item, "call_id", where));
    if (!item.contains("output")) return bad("'" + where + ".output' is required");
    DSV4_ASSIGN_OR_RETURN(auto parts, content_parts(item["output"], where + ".output"));
    flush();
    text::ChatMessage m = message("tool", join_text_parts(parts));
    m.tool_call_id = std::move(call_id);
    out_.push_back(std::move(m));
    return {};
  }

  void flush() {
    if (!pending_) return;
    text::ChatMessage m = message("assistant", std::move(text_));
    m.reasoning_content = std::move(reasoning_);
    m.tool_calls = std::move(calls_);
    out_.push_back(std::move(m));
    text_.clear();
    reasoning_.clear();
    calls_.clear();
    pending_ = false;
  }

  std::vector<text::ChatMessage>& out_;
  std::vector<std::string> system_parts_;  // the parts of out_.back(), while it is a system message
  bool pending_ = false;  // an assistant message is being gathered
  std::string text_, reasoning_;
  std::vector<text::ToolCall> calls_;
};

// One function tool in the flat Responses shape -> a chat tool.
Status read_function(const ojson& t, const std::string& w, ChatRequest& r) {
  DSV4_ASSIGN_OR_RETURN(std::string name, required_string(t, "name", w));
  if (!valid_tool_name(name)) return bad("'" + w + ".name' must be a non-empty tool name without quotes, '<', '>' or newlines");
  text::ToolDefinition tool;
  tool.name = std::move(name);
  DSV4_TRY(check_string(t, "description", w));
  if (t.contains("description") && !t["description"].is_null()) tool.description = t["description"].get<std::string>();
  if (auto it = t.find("parameters"); it != t.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'" + w + ".parameters' must be an object (a JSON schema)");
    tool.parameters = *it;
  }
  DSV4_TRY(read_tool_strict(t, w, w + ".parameters", tool));
  r.tools.push_back(std::move(tool));
  return {};
}

Status unsupported_tool(const std::string& type, const std::string& w) {
  return bad("'" + w + "': tools of type '" + type + "' (built-in tools) are not supported by this server; give function tools");
}

std::string tool_type(const ojson& t) { return t.is_object() && t.contains("type") && t["type"].is_string() ? t["type"].get<std::string>() : ""; }

// Function tools, alone or grouped in namespaces ({type: namespace, name, tools: [...]}), ->
// chat tools; built-in tools are refused. The model sees a namespace's functions by their own
// names, so those must not repeat; `namespaces` maps each to its namespace, which its calls name.
Status read_tools(const ojson& tools, ChatRequest& r, std::map<std::string, std::string>& namespaces) {
  if (!tools.is_array()) return bad("'tools' must be an array");
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string w = at("tools", i);
    const ojson& t = tools[i];
    const std::string type = tool_type(t);
    if (type.empty()) return bad("'" + w + "' must be an object with a string 'type'");
    if (type == "function") {
      DSV4_TRY(read_function(t, w, r));
      continue;
    }
    if (type != "namespace") return unsupported_tool(type, w);
    DSV4_ASSIGN_OR_RETURN(std::string ns, required_string(t, "name", w));
    DSV4_TRY(check_string(t, "description", w));
    if (!t.contains("tools") || !t["tools"].is_array()) return bad("'" + w + ".tools' must be an array");
    for (size_t k = 0; k < t["tools"].size(); ++k) {
      const std::string tw = at(w + ".tools", k);
      const std::string inner = tool_type(t["tools"][k]);
      if (inner != "function") {
        if (inner.empty()) return bad("'" + tw + "' must be an object with a string 'type'");
        return bad("'" + tw + "': tools of type '" + inner + "' are not supported by this server; give function tools");
      }
      DSV4_TRY(read_function(t["tools"][k], tw, r));
      namespaces[r.tools.back().name] = ns;
    }
  }
  for (const auto& [name, ns] : namespaces) {
    size_t n = 0;
    for (const auto& t : r.tools) n += t.name == name;
    if (n > 1) return bad("'tools': the function '" + name + "' of namespace '" + ns + "' has the name of another tool");
  }
  return {};
}

Status read_tool_choice(const ojson& c, ChatRequest& r) {
  const std::string what = "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}";
  if (c.is_string()) {
    const std::string s = c;
    if (s == "auto") r.tool_choice = ToolChoice::auto_;
    else if (s == "none") r.tool_choice = ToolChoice::none;
    else if (s == "required") r.tool_choice = ToolChoice::required;
    else return bad(what);
  } else if (c.is_object() && c.contains("type") && c["type"].is_string()) {
    const std::string type = c["type"];
    if (type != "function")
      return bad("'tool_choice' of type '" + type + "' is not supported by this server (function tools only)");
    DSV4_ASSIGN_OR_RETURN(r.tool_choice_name, required_string(c, "name", "tool_choice"));
    r.tool_choice = ToolChoice::named;
    DSV4_TRY(check_tool_choice_name(r, "function"));
  } else {
    return bad(what);
  }
  if ((r.tool_choice == ToolChoice::required || r.tool_choice == ToolChoice::named) && r.tools.empty())
    return bad("'tool_choice' requires 'tools'");
  return {};
}

// reasoning {effort, summary}: effort by the rule of reasoning_effort in openai.cpp ("none" is
// non-thinking mode; anything else the level DeepSeek's API maps it to, as reasoning_effort). A summary
// is accepted, but what comes back is the reasoning itself (reasoning_text), never a summary.
Status read_reasoning(const ojson& j, text::EncoderRevision revision, ChatRequest& r) {
  if (!j.is_object()) return bad("'reasoning' must be an object");
  DSV4_TRY(check_string(j, "summary", "reasoning"));
  DSV4_TRY(check_string(j, "generate_summary", "reasoning"));
  std::string effort;
  DSV4_TRY(check_string(j, "effort", "reasoning"));
  if (j.contains("effort") && j["effort"].is_string()) effort = j["effort"];
  return read_openai_effort("reasoning.effort", effort, revision, r.thinking);
}

// text {format, verbosity}: format text, json_object or json_schema (structured_output.h).
Status read_text(const ojson& j, ChatRequest& r) {
  if (!j.is_object()) return bad("'text' must be an object");
  DSV4_TRY(check_string(j, "verbosity", "text"));
  auto it = j.find("format");
  if (it == j.end() || it->is_null()) return {};
  DSV4_ASSIGN_OR_RETURN(r.output, parse_openai_format(*it, "text.format", /*flat=*/true));
  return {};
}

// OpenAI's limits: 16 pairs, keys up to 64 characters, string values up to 512.
// Fields this server cannot honour: refused, never silently dropped.
Status check_unsupported(const ojson& j) {
  bool background = false;
  DSV4_TRY(read_bool(j, "background", background));
  if (background) return bad("'background': background responses are not supported by this server");
  for (const char* key : {"conversation", "prompt"})
    if (j.contains(key) && !j[key].is_null())
      return bad(std::string("'") + key + "' is not supported by this server" +
                 (std::string(key) == "conversation" ? "; continue a stored response with 'previous_response_id'" : ""));
  std::string truncation;
  DSV4_TRY(read_string(j, "truncation", truncation));
  if (!truncation.empty() && truncation != "disabled") {
    if (truncation == "auto")
      return bad("'truncation': \"auto\" is not supported by this server: a conversation longer than the context is "
                 "refused, never cut (use \"disabled\")");
    return bad("'truncation' must be \"disabled\" or \"auto\"");
  }
  int64_t top_logprobs = 0;
  DSV4_TRY(read_int(j, "top_logprobs", top_logprobs));
  if (top_logprobs != 0) return bad("'top_logprobs': log-probabilities are not supported by /v1/responses");
  if (auto it = j.find("include"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("'include' must be an array of strings");
    for (const auto& e : *it) {
      if (!e.is_string()) return bad("'include' must be an array of strings");
      if (e == "message.output_text.logprobs")
        return bad("'include': log-probabilities are not supported by /v1/responses");
    }
  }
  if (j.contains("max_tool_calls") && !j["max_tool_calls"].is_null())
    return bad("'max_tool_calls' is not supported by this server (there are no built-in tools to limit)");
  // Codex's own bookkeeping (installation and session ids): nothing here reads it.
  if (j.contains("client_metadata") && !j["client_metadata"].is_null() && !j["client_metadata"].is_object())
    return bad("'client_metadata' must be an object");
  return check_bookkeeping(j);
}

}  // namespace

// ---- ResponseStore ----

ResponseStore::ResponseStore(Limits limits, std::function<Clock::time_point()> now)
    : limits_(limits), now_(std::move(now)) {}

void ResponseStore::evict_locked(Clock::time_point now) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (now - it->stored <= limits_.max_age) {
      ++it;
      continue;
    }
    bytes_ -= it->items.size();
    index_.erase(it->id);
    it = lru_.erase(it);
  }
  while (!lru_.empty() && (lru_.size() > limits_.max_responses || bytes_ > limits_.max_bytes)) {
    bytes_ -= lru_.back().items.size();
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

void ResponseStore::put(const std::string& id, const ojson& items) {
  std::string text = dump(items);
  if (text.size() > limits_.max_bytes) return;
  const auto now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(id); it != index_.end()) {
    bytes_ -= it->second->items.size();
    lru_.erase(it->second);
  }
  bytes_ += text.size();
  lru_.push_front({id, std::move(text), now});
  index_[id] = lru_.begin();
  evict_locked(now);
}

std::optional<ojson> ResponseStore::get(const std::string& id) {
  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    evict_locked(now_());
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    text = it->second->items;
  }
  // Text this store wrote from parsed, depth-checked JSON.
  return ojson::parse(text);
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t ResponseStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

// ---- the request ----

Result<ResponsesRequest> parse_responses_request(std::string_view body, text::EncoderRevision revision,
                                                 ResponseStore& store) {
  DSV4_ASSIGN_OR_RETURN(ojson j, parse_json_object(body));
  // OpenAI's Responses fields, and Codex's client_metadata.
  DSV4_TRY(check_known_fields(
      j,
      {"model", "input", "background", "conversation", "include", "instructions", "max_output_tokens",
       "max_tool_calls", "metadata", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
       "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream",
       "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
       "client_metadata"},
      ApiWording::openai));
  ResponsesRequest rr;
  ChatRequest& r = rr.chat;
  GenerationOptions& g = r.gen;
  DSV4_TRY(read_string(j, "model", g.model));
  if (g.model.empty()) return bad("'model' is required");
  DSV4_TRY(check_unsupported(j));
  DSV4_TRY(read_number(j, "temperature", g.sampling.temperature));
  DSV4_TRY(read_number(j, "top_p", g.sampling.top_p));
  DSV4_TRY(runtime::validate_sampling(g.sampling));
  DSV4_TRY(read_int(j, "max_output_tokens", g.max_tokens));
  if (j.contains("max_output_tokens") && !j["max_output_tokens"].is_null() && g.max_tokens < 1)
    return bad("'max_output_tokens' must be at least 1");
  DSV4_TRY(read_bool(j, "stream", g.stream));
  DSV4_TRY(read_bool(j, "store", rr.store));
  DSV4_TRY(read_string(j, "user", g.user));
  bool parallel_tool_calls = true;  // accepted; the model decides how many calls it makes
  DSV4_TRY(read_bool(j, "parallel_tool_calls", parallel_tool_calls));
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null() && !it->is_object())
    return bad("'stream_options' must be an object");
  ojson metadata = ojson::object();
  if (auto it = j.find("metadata"); it != j.end() && !it->is_null()) metadata = *it;   // checked above
  ojson text_config = {{"format", {{"type", "text"}}}};
  if (auto it = j.find("text"); it != j.end() && !it->is_null()) {
    DSV4_TRY(read_text(*it, r));
    if (it->contains("format") && !(*it)["format"].is_null()) text_config["format"] = (*it)["format"];
    if (it->contains("verbosity") && (*it)["verbosity"].is_string()) text_config["verbosity"] = (*it)["verbosity"];
  }
  ojson reasoning = {{"effort", nullptr}, {"summary", nullptr}};
  if (auto it = j.find("reasoning"); it != j.end() && !it->is_null()) {
    DSV4_TRY(read_reasoning(*it, revision, r));
    for (const char* key : {"effort", "summary"})
      if (it->contains(key)) reasoning[key] = (*it)[key];
  }
  ojson tools = ojson::array();
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
    DSV4_TRY(read_tools(*it, r, rr.tool_namespaces));
    tools = *it;
  }
  ojson tool_choice = "auto";
  if (auto it = j.find("tool_choice"); it != j.end() && !it->is_null()) {
    DSV4_TRY(read_tool_choice(*it, r));
    tool_choice = *it;
  }

  std::string instructions;
  DSV4_TRY(read_string(j, "instructions", instructions));
  std::string previous;
  DSV4_TRY(read_string(j, "previous_response_id", previous));
  if (!j.contains("input") || j["input"].is_null()) return bad("'input' is required");
  const ojson& input = j["input"];
  if (!input.is_string() && !input.is_array()) return bad("'input' must be a string or an array of items");

  // The conversation: a stored one first, then this input; instructions (never carried over
  // from a previous response, as OpenAI does) ahead of both.
  Conversation conversation(r.messages);
  if (!instructions.empty()) conversation.add_instructions(instructions);
  if (!previous.empty()) {
    std::optional<ojson> stored = store.get(previous);
    if (!stored) return Status::not_found("Previous response with id '" + previous + "' not found.");
    rr.conversation = std::move(*stored);
    for (size_t i = 0; i < rr.conversation.size(); ++i)
      DSV4_TRY(conversation.add(rr.conversation[i], at("previous_response_id's item", i)));
  }
  if (input.is_string()) {
    const ojson item = {{"type", "message"}, {"role", "user"}, {"content", input}};
    DSV4_TRY(conversation.add(item, "input"));
    rr.conversation.push_back(item);
  } else {
    for (size_t i = 0; i < input.size(); ++i) {
      DSV4_TRY(conversation.add(input[i], at("input", i)));
      rr.conversation.push_back(input[i]);
    }
  }
  DSV4_TRY(conversation.finish());
  DSV4_TRY(check_structured_output(r, "text.format"));

  auto& e = rr.echo;
  e["instructions"] = instructions.empty() ? nlohmann::json(nullptr) : nlohmann::json(instructions);
  e["max_output_tokens"] = g.max_tokens > 0 ? nlohmann::json(g.max_tokens) : nlohmann::json(nullptr);
  e["metadata"] = nlohmann::json::parse(dump(metadata));
  e["parallel_tool_calls"] = parallel_tool_calls;
  e["previous_response_id"] = previous.empty() ? nlohmann::json(nullptr) : nlohmann::json(previous);
  e["reasoning"] = nlohmann::json::parse(dump(reasoning));
  e["store"] = rr.store;
  e["temperature"] = g.sampling.temperature;
  e["text"] = nlohmann::json::parse(dump(text_config));
  e["tool_choice"] = nlohmann::json::parse(dump(tool_choice));
  e["tools"] = nlohmann::json::parse(dump(tools));
  e["top_p"] = g.sampling.top_p;
  e["truncation"] = "disabled";
  if (!g.user.empty()) e["user"] = g.user;
  return rr;
}

std::string responses_error_body(const Status& status) {
  if (status.code() != StatusCode::not_found) return error_body(status);
  const ojson e = {{"error",
                    {{"message", status.message()},
                     {"type", "invalid_request_error"},
                     {"param", "previous_response_id"},
                     {"code", "previous_response_not_found"}}}};
  return dump(e);
}

// ---- ResponseBuilder ----

ResponseBuilder::ResponseBuilder(std::string id, int64_t created_at, const ResponsesRequest& request)
    : id_(std::move(id)),
      created_at_(created_at),
      model_(request.chat.gen.model),
      echo_(request.echo),
      tool_namespaces_(request.tool_namespaces) {}

nlohmann::json ResponseBuilder::event(const char* type, nlohmann::json fields) {
  fields["type"] = type;
  fields["sequence_number"] = sequence_++;
  return fields;
}

nlohmann::json ResponseBuilder::item_event(const char* type, nlohmann::json fields) {
  fields["item_id"] = output_.back()["id"];
  fields["output_index"] = output_.size() - 1;
  return event(type, std::move(fields));
}

std::vector<nlohmann::json> ResponseBuilder::start() {
  std::vector<nlohmann::json> ev;
  ev.push_back(event("response.created", {{"response", response()}}));
  ev.push_back(event("response.in_progress", {{"response", response()}}));
  return ev;
}

void ResponseBuilder::open(Kind kind, nlohmann::json item, std::vector<nlohmann::json>& events) {
  close("completed", events);
  open_ = kind;
  text_.clear();
  // Item ids follow the response's: resp_X -> rs_X_N, msg_X_N, fc_X_N (N = the output index).
  const char* prefix = kind == Kind::reasoning ? "rs_" : kind == Kind::message ? "msg_" : "fc_";
  item["id"] = prefix + id_.substr(id_.find('_') + 1) + "_" + std::to_string(output_.size());
  output_.push_back(item);
  events.push_back(event("response.output_item.added", {{"output_index", output_.size() - 1}, {"item", item}}));
  if (kind == Kind::reasoning)
    events.push_back(item_event("response.content_part.added",
                                {{"content_index", 0}, {"part", {{"type", "reasoning_text"}, {"text", ""}}}}));
  if (kind == Kind::message)
    events.push_back(item_event("response.content_part.added",
                                {{"content_index", 0},
                                 {"part", {{"type", "output_text"}, {"annotations", nlohmann::json::array()}, {"text", ""}}}}));
}

void ResponseBuilder::close(const char* item_status, std::vector<nlohmann::json>& events) {
  if (open_ == Kind::none) return;
  nlohmann::json& item = output_.back();
  if (open_ == Kind::function_call) {
    events.push_back(item_event("response.function_call_arguments.done", {{"arguments", text_}, {"name", item["name"]}}));
    item["arguments"] = text_;
  } else {
    nlohmann::json part = {{"type", open_ == Kind::reasoning ? "reasoning_text" : "output_text"}, {"text", text_}};
    if (open_ == Kind::reasoning) {
      events.push_back(item_event("response.reasoning_text.done", {{"content_index", 0}, {"text", text_}}));
    } else {
      part["annotations"] = nlohmann::json::array();
      events.push_back(item_event("response.output_text.done",
                                  {{"content_index", 0}, {"text", text_}, {"logprobs", nlohmann::json::array()}}));
    }
    events.push_back(item_event("response.content_part.done", {{"content_index", 0}, {"part", part}}));
    item["content"] = nlohmann::json::array({part});
  }
  item["status"] = item_status;
  events.push_back(event("response.output_item.done", {{"output_index", output_.size() - 1}, {"item", item}}));
  open_ = Kind::none;
  text_.clear();
}

std::vector<nlohmann::json> ResponseBuilder::push(const ChatDelta& d) {
  std::vector<nlohmann::json> ev;
  if (!d.reasoning.empty()) {
    if (open_ != Kind::reasoning)
      open(Kind::reasoning,
           {{"type", "reasoning"}, {"summary", nlohmann::json::array()}, {"content", nlohmann::json::array()},
            {"status", "in_progress"}},
           ev);
    text_ += d.reasoning;
    ev.push_back(item_event("response.reasoning_text.delta", {{"content_index", 0}, {"delta", d.reasoning}}));
  }
  if (!d.content.empty()) {
    if (open_ != Kind::message)
      open(Kind::message,
           {{"type", "message"}, {"status", "in_progress"}, {"role", "assistant"}, {"content", nlohmann::json::array()}},
           ev);
    text_ += d.content;
    ev.push_back(item_event("response.output_text.delta",
                            {{"content_index", 0}, {"delta", d.content}, {"logprobs", nlohmann::json::array()}}));
  }
  for (const ToolCallDelta& t : d.tool_calls) {
    if (!t.id.empty()) {
      nlohmann::json item = {
          {"type", "function_call"}, {"status", "in_progress"}, {"arguments", ""}, {"call_id", t.id}, {"name", t.name}};
      if (auto ns = tool_namespaces_.find(t.name); ns != tool_namespaces_.end()) item["namespace"] = ns->second;
      open(Kind::function_call, std::move(item), ev);
    }
    if (open_ == Kind::function_call && !t.arguments.empty()) {
      text_ += t.arguments;
      ev.push_back(item_event("response.function_call_arguments.delta", {{"delta", t.arguments}}));
    }
  }
  return ev;
}

std::vector<nlohmann::json> ResponseBuilder::finish(runtime::FinishReason finish, const ResponseUsage& usage,
                                                    const std::string& error) {
  std::vector<nlohmann::json> ev;
  switch (finish) {
    case runtime::FinishReason::stop: status_ = "completed"; break;
    case runtime::FinishReason::length: status_ = "incomplete"; break;
    case runtime::FinishReason::error: status_ = "failed"; break;
    case runtime::FinishReason::cancelled: status_ = "cancelled"; break;
  }
  close(status_ == "completed" ? "completed" : "incomplete", ev);
  if (output_.empty() && status_ == "completed") {
    open(Kind::message,
         {{"type", "message"}, {"status", "in_progress"}, {"role", "assistant"}, {"content", nlohmann::json::array()}},
         ev);
    close("completed", ev);
  }
  usage_ = {{"input_tokens", usage.input_tokens},
            {"input_tokens_details", {{"cached_tokens", usage.cached_tokens}}},
            {"output_tokens", usage.output_tokens},
            {"output_tokens_details", {{"reasoning_tokens", usage.reasoning_tokens}}},
            {"total_tokens", usage.input_tokens + usage.output_tokens}};
  if (status_ == "incomplete") incomplete_ = {{"reason", "max_output_tokens"}};
  if (status_ == "failed") error_ = {{"code", "server_error"}, {"message", error}};
  const char* last = status_ == "completed"    ? "response.completed"
                     : status_ == "incomplete" ? "response.incomplete"
                                               : "response.failed";
  ev.push_back(event(last, {{"response", response()}}));
  return ev;
}

nlohmann::json ResponseBuilder::response() const {
  nlohmann::json r = {{"id", id_},
                      {"object", "response"},
                      {"created_at", created_at_},
                      {"status", status_},
                      {"background", false},
                      {"error", error_},
                      {"incomplete_details", incomplete_},
                      {"model", model_},
                      {"output", output_},
                      {"usage", usage_}};
  for (auto it = echo_.begin(); it != echo_.end(); ++it) r[it.key()] = it.value();
  return r;
}

void remember_response(ResponseStore& store, const ResponsesRequest& request, const ResponseBuilder& response) {
  if (!request.store || (response.status() != "completed" && response.status() != "incomplete")) return;
  ojson items = request.conversation;
  for (const auto& item : response.output())
    items.push_back(ojson::parse(item.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  store.put(response.id(), items);
}

std::string responses_sse(const nlohmann::json& event) {
  return sse_event(event["type"].get<std::string>(),
                   event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace dsv4::server

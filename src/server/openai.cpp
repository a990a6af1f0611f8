#include "server/openai.h"

#include <charconv>
#include <climits>
#include <cmath>

#include "server/errors.h"
#include "server/json_fields.h"
#include "server/sse.h"
#include "server/structured_output.h"

namespace dsv4::server {

using json = nlohmann::json;

// ---- requests ----

namespace {

using ojson = nlohmann::ordered_json;

Status bad(const std::string& m) { return Status::invalid_argument(m); }

Status read_generation_options(const ojson& j, GenerationOptions& g, bool chat) {
  DSV4_TRY(read_string(j, "model", g.model));
  if (g.model.empty()) return bad("'model' is required");
  auto& s = g.sampling;
  DSV4_TRY(read_number(j, "temperature", s.temperature));
  DSV4_TRY(read_number(j, "top_p", s.top_p));
  DSV4_TRY(read_number(j, "min_p", s.min_p));
  DSV4_TRY(read_number(j, "presence_penalty", s.presence_penalty));
  DSV4_TRY(read_number(j, "frequency_penalty", s.frequency_penalty));
  DSV4_TRY(read_number(j, "repetition_penalty", s.repetition_penalty));
  int64_t top_k = s.top_k;
  DSV4_TRY(read_int(j, "top_k", top_k));
  if (top_k == -1) top_k = 0;  // vLLM spelling of "off"
  if (top_k < 0 || top_k > (int64_t(1) << 30)) return bad("'top_k' must be >= 0");
  s.top_k = int(top_k);
  if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return bad("'seed' must be an integer");
    s.seed = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
  }
  // logit_bias: {"<token id>": bias}; the ranges are checked by validate_sampling (values) and
  // the scheduler (ids against the vocabulary).
  if (auto it = j.find("logit_bias"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'logit_bias' must be an object mapping token ids to biases");
    for (const auto& [key, value] : it->items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id > INT32_MAX)
        return bad("'logit_bias' keys must be token ids, not '" + key + "'");
      if (!value.is_number()) return bad("'logit_bias[\"" + key + "\"]' must be a number");
      s.logit_bias.emplace_back(int32_t(id), value.get<float>());
    }
  }
  int64_t max_tokens = 0;
  DSV4_TRY(read_int(j, "max_tokens", max_tokens));
  DSV4_TRY(read_int(j, "max_completion_tokens", max_tokens));
  if (max_tokens < 0) return bad("'max_tokens' must be >= 0");
  if (j.contains("max_tokens") && !j["max_tokens"].is_null() && max_tokens == 0)
    return bad("'max_tokens' must be at least 1");
  g.max_tokens = max_tokens;
  int64_t n = 1;
  DSV4_TRY(read_int(j, "n", n));
  if (n != 1) return bad("'n' must be 1 (one choice per request)");
  DSV4_TRY(read_stop_strings(j, "stop", g.stop));
  if (auto it = j.find("stop_token_ids"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("'stop_token_ids' must be an array of integers");
    for (const auto& e : *it) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX)
        return bad("'stop_token_ids' must be an array of token ids");
      g.stop_token_ids.push_back(int32_t(e.get<int64_t>()));
    }
  }
  DSV4_TRY(read_bool(j, "ignore_eos", g.ignore_eos));
  DSV4_TRY(read_bool(j, "stream", g.stream));
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'stream_options' must be an object");
    DSV4_TRY(read_bool(*it, "include_usage", g.include_usage));
  }
  DSV4_TRY(read_string(j, "user", g.user));
  if (chat) {
    DSV4_TRY(read_bool(j, "logprobs", g.logprobs));
    int64_t top = -1;
    DSV4_TRY(read_int(j, "top_logprobs", top));
    if (top >= 0 && !g.logprobs) return bad("'top_logprobs' requires 'logprobs': true");
    if (g.logprobs) s.top_logprobs = int(std::max<int64_t>(0, std::min<int64_t>(top, 1000)));
    if (top > runtime::kMaxTopLogprobs) s.top_logprobs = int(top);  // rejected by validate_sampling
  } else {
    // Completions: 'logprobs' is the number of alternatives (0..20), or null.
    if (auto it = j.find("logprobs"); it != j.end() && !it->is_null()) {
      if (it->is_boolean()) return bad("'logprobs' must be an integer for /v1/completions");
      int64_t top = 0;
      DSV4_TRY(read_int(j, "logprobs", top));
      g.logprobs = true;
      s.top_logprobs = int(std::max<int64_t>(-2, std::min<int64_t>(top, 1000)));
    }
  }
  return runtime::validate_sampling(s);
}

// Chat-completions fields of OpenAI's API that this server cannot honour: each is refused with
// what it is, unless it asks for what the server does anyway.
Status check_chat_unsupported(const ojson& j) {
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (present("parallel_tool_calls")) {
    if (!j["parallel_tool_calls"].is_boolean()) return bad("'parallel_tool_calls' must be a boolean");
    if (!j["parallel_tool_calls"].get<bool>())
      return bad("'parallel_tool_calls': false is not supported: the model may answer with several tool calls");
  }
  if (present("modalities") && j["modalities"] != ojson::array({"text"}))
    return bad("'modalities' must be [\"text\"]: this server generates text only");
  if (present("verbosity") && j["verbosity"] != "medium")
    return bad("'verbosity' is not supported by this server (only the default, \"medium\")");
  if (present("audio")) return bad("'audio': audio output is not supported by this server");
  if (present("prediction")) return bad("'prediction' (predicted outputs) is not supported by this server");
  if (present("web_search_options")) return bad("'web_search_options': web search is not supported by this server");
  if (present("functions") || present("function_call"))
    return bad(std::string("'") + (present("functions") ? "functions" : "function_call") +
               "' (deprecated) is not supported: give 'tools' and 'tool_choice'");
  return check_bookkeeping(j);
}

Result<std::string> text_part(const ojson& p, const std::string& where) {
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
    return bad("'" + where + "' must be an object with a string 'type'");
  // Images, audio and files would be dropped by the renderer (a text-only model): refuse them
  // as the Anthropic endpoint refuses its image and document blocks.
  if (p["type"] != "text")
    return bad("'" + where + "': content parts of type '" + p["type"].get<std::string>() +
               "' are not supported by this server (text only)");
  if (!p.contains("text") || !p["text"].is_string()) return bad("'" + where + ".text' must be a string");
  return p["text"].get<std::string>();
}

// A message's content: a string, text parts (joined as the encoder joins them), or null (an
// assistant message that only calls tools).
Result<std::string> read_content(const ojson& c, const std::string& where, bool allow_null) {
  if (c.is_null()) {
    if (!allow_null) return bad("'" + where + "' must not be null");
    return std::string();
  }
  DSV4_ASSIGN_OR_RETURN(auto parts, text_parts(c, where, "content parts", text_part));
  return join_text_parts(parts);
}

// An optional string field of a message ("" when absent or null).
Status read_message_string(const ojson& m, const char* key, const std::string& where, std::string& out) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return {};
  if (!it->is_string()) return bad("'" + where + "." + key + "' must be a string");
  out = it->get<std::string>();
  return {};
}

Result<text::ToolCall> read_tool_call(const ojson& c, const std::string& cw) {
  if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
    return bad("'" + cw + ".function' must be an object");
  const ojson& f = c["function"];
  text::ToolCall call;
  DSV4_TRY(read_message_string(c, "id", cw, call.id));
  if (!f.contains("name") || !f["name"].is_string()) return bad("'" + cw + ".function.name' must be a string");
  call.name = f["name"].get<std::string>();
  if (call.name.empty()) return bad("'" + cw + ".function.name' must not be empty");
  call.arguments = "{}";  // no arguments: an empty object
  if (f.contains("arguments")) {
    if (!f["arguments"].is_string()) return bad("'" + cw + ".function.arguments' must be a string (JSON text)");
    call.arguments = f["arguments"].get<std::string>();
    // The renderer parses the arguments and recurses over them (text/chat_encoding).
    if (json_nests_deeper_than(call.arguments, kMaxJsonDepth))
      return bad("'" + cw + ".function.arguments' nests arrays and objects deeper than " +
                 std::to_string(kMaxJsonDepth) + " levels");
  }
  return call;
}

// One chat-completions message, with the fields of DeepSeek's encoder that OpenAI's API lacks
// (name, task, prefix / wo_eos, tools and response_format on a system message).
Result<text::ChatMessage> read_message(const ojson& m, const std::string& w) {
  if (!m.is_object()) return bad("'" + w + "' must be an object");
  if (!m.contains("role") || !m["role"].is_string()) return bad("'" + w + ".role' must be a string");
  text::ChatMessage out;
  out.role = m["role"].get<std::string>();
  const std::string& role = out.role;
  if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
    return bad("'" + w + ".role' must be one of system, user, assistant, tool, developer (got '" + role + "')");
  const bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
  if (m.contains("content")) {
    DSV4_ASSIGN_OR_RETURN(out.content, read_content(m["content"], w + ".content", role == "assistant"));
  } else if (role != "assistant" || !has_calls) {
    return bad("'" + w + ".content' is required");
  }
  for (auto [key, field] : {std::pair{"tool_call_id", &out.tool_call_id},
                            {"reasoning_content", &out.reasoning_content},
                            {"name", &out.name},
                            {"task", &out.task}})
    DSV4_TRY(read_message_string(m, key, w, *field));
  if (has_calls) {
    if (role != "assistant") return bad("'" + w + ".tool_calls' is only allowed on assistant messages");
    const ojson& calls = m["tool_calls"];
    if (!calls.is_array()) return bad("'" + w + ".tool_calls' must be an array");
    for (size_t k = 0; k < calls.size(); ++k) {
      DSV4_ASSIGN_OR_RETURN(text::ToolCall call, read_tool_call(calls[k], w + ".tool_calls[" + std::to_string(k) + "]"));
      out.tool_calls.push_back(std::move(call));
    }
  }
  // A system message's tools (DeepSeek's encoder) are read as the encoder reads them.
  if (auto it = m.find("tools"); it != m.end() && !it->is_null()) {
    if (!it->is_array()) return bad("'" + w + ".tools' must be an array");
    DSV4_ASSIGN_OR_RETURN(out.tools, text::tools_from_json(*it, w + ".tools"));
  }
  if (auto it = m.find("response_format"); it != m.end() && !it->is_null()) out.response_format = *it;
  for (const char* key : {"prefix", "wo_eos"}) {
    auto it = m.find(key);
    if (it == m.end() || it->is_null()) continue;
    if (!it->is_boolean()) return bad("'" + w + "." + key + "' must be a boolean");
    out.prefix = out.prefix || it->get<bool>();
  }
  return out;
}

Result<std::vector<text::ChatMessage>> read_messages(const ojson& msgs) {
  if (!msgs.is_array()) return bad("'messages' must be an array");
  if (msgs.empty()) return bad("'messages' must not be empty");
  std::vector<text::ChatMessage> out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    DSV4_ASSIGN_OR_RETURN(text::ChatMessage m, read_message(msgs[i], "messages[" + std::to_string(i) + "]"));
    out.push_back(std::move(m));
  }
  return out;
}

// tools: [{"type": "function", "function": {name, description, parameters, strict}}].
Result<std::vector<text::ToolDefinition>> read_tools(const ojson& tools) {
  if (!tools.is_array()) return bad("'tools' must be an array");
  std::vector<text::ToolDefinition> out;
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& t = tools[i];
    const std::string w = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("type") || t["type"] != "function" || !t.contains("function") ||
        !t["function"].is_object())
      return bad("'" + w + "' must be {\"type\": \"function\", \"function\": {...}}");
    const ojson& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
      return bad("'" + w + ".function.name' must be a non-empty string");
    text::ToolDefinition tool;
    tool.name = f["name"];
    if (auto d = f.find("description"); d != f.end() && !d->is_null()) {
      if (!d->is_string()) return bad("'" + w + ".function.description' must be a string");
      tool.description = d->get<std::string>();
    }
    if (auto p = f.find("parameters"); p != f.end()) {
      if (!p->is_object()) return bad("'" + w + ".function.parameters' must be an object");
      tool.parameters = *p;
    }
    DSV4_TRY(read_tool_strict(f, w + ".function", w + ".function.parameters", tool));
    out.push_back(std::move(tool));
  }
  return out;
}

}  // namespace

Result<ChatRequest> parse_chat_request(std::string_view body, text::EncoderRevision revision) {
  DSV4_ASSIGN_OR_RETURN(ojson j, parse_json_object(body));
  // OpenAI's chat-completions fields, then DeepSeek's (thinking) and this server's extensions.
  DSV4_TRY(check_known_fields(
      j,
      {"model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
       "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
       "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
       "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
       "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
       "thinking", "chat_template_kwargs", "top_k", "min_p", "repetition_penalty", "stop_token_ids", "ignore_eos"},
      ApiWording::openai));
  DSV4_TRY(check_chat_unsupported(j));
  ChatRequest r;
  DSV4_TRY(read_generation_options(j, r.gen, /*chat=*/true));
  if (!j.contains("messages")) return bad("'messages' is required");
  DSV4_ASSIGN_OR_RETURN(r.messages, read_messages(j["messages"]));
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
    DSV4_ASSIGN_OR_RETURN(r.tools, read_tools(*it));
  }
  if (auto it = j.find("response_format"); it != j.end() && !it->is_null()) {
    DSV4_ASSIGN_OR_RETURN(r.output, parse_openai_format(*it, "response_format", /*flat=*/false));
  }
  if (auto it = j.find("tool_choice"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      const std::string c = *it;
      if (c == "auto") r.tool_choice = ToolChoice::auto_;
      else if (c == "none") r.tool_choice = ToolChoice::none;
      else if (c == "required") r.tool_choice = ToolChoice::required;
      else return bad("'tool_choice' must be \"auto\", \"none\", \"required\" or a function object");
    } else if (it->is_object() && it->contains("function") && (*it)["function"].is_object() &&
               (*it)["function"].contains("name") && (*it)["function"]["name"].is_string()) {
      r.tool_choice = ToolChoice::named;
      r.tool_choice_name = (*it)["function"]["name"];
      DSV4_TRY(check_tool_choice_name(r, "function"));
    } else {
      return bad("'tool_choice' must be \"auto\", \"none\", \"required\" or a function object");
    }
    if (r.tool_choice != ToolChoice::none && r.tool_choice != ToolChoice::auto_ && r.tools.empty())
      return bad("'tool_choice' requires 'tools'");
  }
  // Thinking mode: DeepSeek-V4 thinks by default. `chat_template_kwargs.thinking` and DeepSeek's
  // own `thinking: {"type": "enabled"|"disabled"}` switch it on or off.
  //
  // reasoning_effort: "none" turns thinking off (OpenAI's meaning), on every revision; any other
  // API name selects thinking at the level DeepSeek's own API maps it to for the served model's
  // encoder (text::api_effort_level: "medium" -> high, "xhigh" -> max, ...); other strings get a
  // 400 that lists the names.
  if (auto it = j.find("reasoning_effort"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad("'reasoning_effort' must be a string");
    DSV4_TRY(read_openai_effort("reasoning_effort", it->get<std::string>(), revision, r.thinking));
  }
  if (auto it = j.find("chat_template_kwargs"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("'chat_template_kwargs' must be an object");
    for (const char* key : {"thinking", "enable_thinking"}) {
      if (auto t = it->find(key); t != it->end() && !t->is_null()) {
        if (!t->is_boolean()) return bad(std::string("'chat_template_kwargs.") + key + "' must be a boolean");
        r.thinking.mode = t->get<bool>() ? ThinkingMode::thinking : ThinkingMode::chat;
      }
    }
  }
  if (auto it = j.find("thinking"); it != j.end() && !it->is_null()) {
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
      return bad("'thinking' must be {\"type\": \"enabled\"} or {\"type\": \"disabled\"}");
    const std::string t = (*it)["type"];
    if (t == "disabled") r.thinking.mode = ThinkingMode::chat;
    else if (t == "enabled") r.thinking.mode = ThinkingMode::thinking;
    else return bad("'thinking.type' must be \"enabled\" or \"disabled\"");
  }
  DSV4_TRY(check_structured_output(r, "response_format"));
  return r;
}

Result<CompletionRequest> parse_completion_request(std::string_view body) {
  DSV4_ASSIGN_OR_RETURN(ojson j, parse_json_object(body));
  // OpenAI's (legacy) completions fields, then this server's extensions (max_completion_tokens
  // too: the options reader shared with chat takes it).
  DSV4_TRY(check_known_fields(j,
                              {"model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs",
                               "max_tokens", "n", "presence_penalty", "seed", "stop", "stream", "stream_options",
                               "suffix", "temperature", "top_p", "user", "max_completion_tokens", "top_k", "min_p",
                               "repetition_penalty", "stop_token_ids", "ignore_eos"},
                              ApiWording::openai));
  int64_t best_of = 1;
  DSV4_TRY(read_int(j, "best_of", best_of));
  if (best_of != 1) return bad("'best_of' must be 1 (one candidate per request)");
  std::string suffix;
  DSV4_TRY(read_string(j, "suffix", suffix));
  if (!suffix.empty()) return bad("'suffix' (fill-in-the-middle) is not supported by this server");
  CompletionRequest r;
  DSV4_TRY(read_generation_options(j, r.gen, /*chat=*/false));
  if (!j.contains("prompt")) return bad("'prompt' is required");
  const ojson& p = j["prompt"];
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
    if (r.prompt.empty()) return bad("'prompt' must not be empty");
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    for (const auto& e : p) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX)
        return bad("'prompt' must be a string or an array of token ids");
      r.prompt_ids.push_back(int32_t(e.get<int64_t>()));
    }
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    r.prompt = p[0].get<std::string>();
  } else {
    return bad("'prompt' must be a string or an array of token ids (batches of prompts are not supported)");
  }
  DSV4_TRY(read_bool(j, "echo", r.echo));
  return r;
}

// ---- responses ----

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

json openai_usage(const runtime::GenerationEvent& f) {
  return {{"prompt_tokens", f.prompt_tokens},
          {"completion_tokens", f.generated_tokens},
          {"total_tokens", f.prompt_tokens + f.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", f.cached_tokens}}},
          {"completion_tokens_details",
           {{"accepted_prediction_tokens", f.accepted_tokens},
            {"rejected_prediction_tokens", f.drafted_tokens - f.accepted_tokens}}}};
}

// ---- ChatCompletion ----

ChatCompletion::ChatCompletion(std::string id, int64_t created, std::string model, bool reasoning, bool logprobs)
    : id_(std::move(id)), created_(created), model_(std::move(model)), reasoning_(reasoning), logprobs_(logprobs) {}

void ChatCompletion::add(ChatDelta& piece) {
  reasoning_text_ += piece.reasoning;
  content_ += piece.content;
  for (auto& t : piece.tool_calls) calls_.push_back(std::move(t));
}

json ChatCompletion::response(const std::string& finish_reason, const json& logprobs, const json& usage) const {
  // The deltas of each call (by index) make one call: its id and name, its arguments joined.
  json tool_calls = json::array();
  for (const auto& d : calls_) {
    if (d.index >= int(tool_calls.size()))
      tool_calls.push_back({{"id", d.id}, {"type", "function"}, {"function", {{"name", d.name}, {"arguments", ""}}}});
    auto& c = tool_calls[size_t(d.index)];
    if (!d.name.empty()) c["function"]["name"] = d.name;
    if (!d.id.empty()) c["id"] = d.id;
    c["function"]["arguments"] = c["function"]["arguments"].get<std::string>() + d.arguments;
  }
  json message = {{"role", "assistant"}};
  message["content"] = (content_.empty() && !tool_calls.empty()) ? json(nullptr) : json(content_);
  if (reasoning_) message["reasoning_content"] = reasoning_text_;
  if (!tool_calls.empty()) message["tool_calls"] = tool_calls;
  json choice = {{"index", 0}, {"message", message}, {"finish_reason", finish_reason}};
  choice["logprobs"] = logprobs_ ? json({{"content", logprobs}}) : json(nullptr);
  return {{"id", id_},       {"object", "chat.completion"},     {"created", created_},
          {"model", model_}, {"choices", json::array({choice})}, {"usage", usage}};
}

json ChatCompletion::chunk(json delta, json finish, json logprobs) const {
  json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish)}};
  return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_},
          {"choices", json::array({choice})}};
}

std::string ChatCompletion::stream_start() const {
  return sse_data(dump(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)));
}

std::string ChatCompletion::stream_piece(const ChatDelta& piece, const json& logprobs) const {
  json delta = json::object();
  if (!piece.reasoning.empty()) delta["reasoning_content"] = piece.reasoning;
  if (!piece.content.empty()) delta["content"] = piece.content;
  if (!piece.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& t : piece.tool_calls) {
      json c = {{"index", t.index}, {"function", {{"arguments", t.arguments}}}};
      if (!t.id.empty()) {
        c["id"] = t.id;
        c["type"] = "function";
      }
      if (!t.name.empty()) c["function"]["name"] = t.name;
      calls.push_back(c);
    }
    delta["tool_calls"] = calls;
  }
  if (delta.empty() && logprobs.empty()) return "";
  return sse_data(dump(chunk(delta, nullptr, logprobs_ ? json({{"content", logprobs}}) : json(nullptr))));
}

std::string ChatCompletion::stream_end(const std::string& finish_reason, const json& usage) const {
  std::string out = sse_data(dump(chunk(json::object(), finish_reason, nullptr)));
  if (!usage.is_null()) {
    json u = chunk(json::object(), nullptr, nullptr);
    u["choices"] = json::array();
    u["usage"] = usage;
    out += sse_data(dump(u));
  }
  return out;
}

// ---- TextCompletion ----

TextCompletion::TextCompletion(std::string id, int64_t created, std::string model, bool logprobs)
    : id_(std::move(id)), created_(created), model_(std::move(model)), logprobs_(logprobs) {}

json TextCompletion::object(json choices) const {
  return {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_},
          {"choices", std::move(choices)}};
}

// Completions-style logprobs from chat-style entries.
json TextCompletion::logprobs_json(const json& entries) const {
  if (!logprobs_ || entries.is_null()) return nullptr;
  json tokens = json::array(), lps = json::array(), tops = json::array();
  for (const auto& e : entries) {
    tokens.push_back(e["token"]);
    lps.push_back(e["logprob"]);
    json t = json::object();
    for (const auto& alt : e["top_logprobs"]) t[alt["token"].get<std::string>()] = alt["logprob"];
    tops.push_back(t);
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}};
}

json TextCompletion::response(const std::string& text, const std::string& finish_reason, const json& logprobs,
                              const json& usage) const {
  json choice = {{"index", 0}, {"text", text}, {"finish_reason", finish_reason}};
  choice["logprobs"] = logprobs_json(logprobs);
  json body = object(json::array({choice}));
  body["usage"] = usage;
  return body;
}

std::string TextCompletion::frame(const std::string& text, json finish, json logprobs) const {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}};
  return sse_data(dump(object(json::array({choice}))));
}

std::string TextCompletion::stream_piece(const std::string& text, const json& logprobs) const {
  return frame(text, nullptr, logprobs_json(logprobs));
}

std::string TextCompletion::stream_end(const std::string& finish_reason, const json& usage) const {
  std::string out = frame("", finish_reason, nullptr);
  if (!usage.is_null()) {
    json u = object(json::array());
    u["usage"] = usage;
    out += sse_data(dump(u));
  }
  return out;
}

// ---- either shape ----

template <class Completion>
std::string stream_finish(const Completion& completion, const runtime::GenerationEvent& finished,
                          const std::string& finish_reason, bool include_usage) {
  std::string out = finished.finish == runtime::FinishReason::error
                        ? sse_data(error_body(finished.status))
                        : completion.stream_end(finish_reason, include_usage ? openai_usage(finished) : json());
  return out + sse_done();
}

template std::string stream_finish(const ChatCompletion&, const runtime::GenerationEvent&, const std::string&, bool);
template std::string stream_finish(const TextCompletion&, const runtime::GenerationEvent&, const std::string&, bool);

}  // namespace dsv4::server

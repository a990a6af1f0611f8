#include "server/openai.h"

#include "server/errors.h"
#include "server/sse.h"

namespace dsv4::server {

using json = nlohmann::json;

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

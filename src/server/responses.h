// OpenAI's Responses API (POST /v1/responses) over the chat path. A request becomes a
// ChatRequest, so rendering, tokenization, output steering and output parsing are exactly those
// of /v1/chat/completions; the model's output (ChatDelta pieces) becomes Responses output items,
// for a whole response object or as the stream of semantic events. Everything here is pure (no
// HTTP): the handler in http_server.cpp only moves pieces between the scheduler and these.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/text_codec.h"

namespace dsv4::server {

// Finished responses kept for `previous_response_id`: each entry is a whole conversation in
// Responses item form (its input items, those of the responses it continued, and its output
// items), so evicting one never breaks another. Bounded by count, by bytes (the compact JSON
// text, which is how entries are held) and by age; past a bound the least recently used entries
// go first. Thread-safe.
struct ResponseStoreLimits {
  size_t max_responses = 1000;
  size_t max_bytes = size_t(64) << 20;
  std::chrono::seconds max_age{std::chrono::hours(2)};
};

class ResponseStore {
 public:
  using Clock = std::chrono::steady_clock;
  using Limits = ResponseStoreLimits;
  explicit ResponseStore(Limits limits = {}, std::function<Clock::time_point()> now = Clock::now);

  // Keeps `items` (a JSON array) under `id`. An entry larger than max_bytes is not kept.
  void put(const std::string& id, const nlohmann::ordered_json& items);
  // The items of `id`, or nullopt when unknown, evicted or expired. Marks the entry used.
  std::optional<nlohmann::ordered_json> get(const std::string& id);

  size_t size() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::string id;
    std::string items;  // compact JSON
    Clock::time_point stored;
  };
  void evict_locked(Clock::time_point now);

  const Limits limits_;
  const std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

// A parsed Responses request.
struct ResponsesRequest {
  // The chat to run: instructions as the first system message, then the conversation items as
  // messages; tools, tool_choice, thinking mode and effort, sampling, max_output_tokens, stream.
  ChatRequest chat;
  // The conversation in Responses item form: the stored items of previous_response_id, then
  // this request's input (a string input as one user message). What a stored response keeps,
  // with its output items after it.
  nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
  bool store = true;
  // The functions given inside namespace tools, and their namespace (their calls name it).
  std::map<std::string, std::string> tool_namespaces;
  // The request's settings as the response object repeats them (instructions, tools,
  // tool_choice, reasoning, text, metadata, temperature, top_p, ...).
  nlohmann::json echo = nlohmann::json::object();
};

// Parse + validate. Conversions:
//   instructions                           -> a leading system message
//   input: a string                        -> one user message
//   message items (role user / system / developer / assistant; content a string or
//     input_text / output_text parts)      -> user / system / system / assistant messages.
//                                             OpenAI's developer role is its system role (the
//                                             encoder's "developer" is a user-side turn that
//                                             thinking mode drops from history).
//   reasoning items (reasoning_text content) -> the next assistant message's reasoning_content
//   function_call items                    -> that assistant message's tool_calls
//   function_call_output items             -> tool messages (call_id -> tool_call_id)
//   tools [{type: function, name, description, parameters, strict}] -> function tools, also
//     grouped in namespaces [{type: namespace, name, tools: [function tools]}]: the model sees
//     the functions by their names (which must differ), calls carry their namespace
//   tool_choice auto / none / required / {type: function, name}
//   reasoning.effort                       -> "none": non-thinking mode; otherwise a level of
//                                             `revision`, the served model's encoder (the rule
//                                             of reasoning_effort in openai.cpp)
//   max_output_tokens, temperature, top_p, stream, store, metadata, user, parallel_tool_calls
//   previous_response_id                   -> the conversation stored under it comes first
// Refused with invalid_argument naming the field: built-in tools (web_search, file_search,
// mcp, ...), structured outputs (text.format json_schema / json_object), images, files and
// audio, item types other than the above, truncation "auto", background, prompt templates,
// conversations, logprobs, an input that ends with an assistant item. An unknown
// previous_response_id is not_found (see responses_error_body). Other fields are ignored, as
// /v1/chat/completions ignores fields it does not know.
Result<ResponsesRequest> parse_responses_request(std::string_view body, text::EncoderRevision revision,
                                                 ResponseStore& store);

// The OpenAI error body of a refused request: that of errors.h, except that not_found (only an
// unknown previous_response_id comes out of the parser as not_found) carries OpenAI's code
// "previous_response_not_found" and param "previous_response_id".
std::string responses_error_body(const Status& status);

// Token counts of a finished generation, in Responses usage terms.
struct ResponseUsage {
  int64_t input_tokens = 0;      // the whole prompt
  int64_t cached_tokens = 0;     //   of which taken from the prefix cache
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;  //   of which before the answer (up to `</think>`)
};

// Model output -> the response object and its stream events. Output items, in the order the
// output produced them: reasoning (content [{type: reasoning_text}], summary []), message
// (one output_text part, annotations []), function_call (call_id, name, arguments, and the
// namespace of a function given in one). start(),
// push() and finish() return the stream events, each with its sequence_number, and build
// response() alongside, so both response shapes come from the same calls.
class ResponseBuilder {
 public:
  ResponseBuilder(std::string id, int64_t created_at, const ResponsesRequest& request);

  // response.created and response.in_progress: a stream's first events.
  std::vector<nlohmann::json> start();
  // output_item.added / content_part.added for a new item, and the deltas
  // (reasoning_text.delta, output_text.delta, function_call_arguments.delta).
  std::vector<nlohmann::json> push(const ChatDelta& d);
  // Ends the response: closes the open item (its .done events) and sets the status from
  // `finish`: stop -> completed; length -> incomplete (incomplete_details.reason
  // "max_output_tokens"); error -> failed (error.message = `error`); cancelled -> cancelled. The
  // last event is response.completed, .incomplete or .failed with the whole response. An output
  // with no item at all gets an empty message.
  std::vector<nlohmann::json> finish(runtime::FinishReason finish, const ResponseUsage& usage,
                                     const std::string& error = "");

  const std::string& id() const { return id_; }
  // "in_progress" until finish().
  const std::string& status() const { return status_; }
  const nlohmann::json& output() const { return output_; }
  nlohmann::json response() const;

 private:
  enum class Kind { none, reasoning, message, function_call };
  nlohmann::json event(const char* type, nlohmann::json fields);
  nlohmann::json item_event(const char* type, nlohmann::json fields);  // + item_id, output_index
  void open(Kind kind, nlohmann::json item, std::vector<nlohmann::json>& events);
  void close(const char* item_status, std::vector<nlohmann::json>& events);

  std::string id_;
  int64_t created_at_;
  std::string model_;
  nlohmann::json echo_;
  std::map<std::string, std::string> tool_namespaces_;
  std::string status_ = "in_progress";
  nlohmann::json output_ = nlohmann::json::array();
  nlohmann::json usage_;  // null until finish()
  nlohmann::json error_;
  nlohmann::json incomplete_;
  Kind open_ = Kind::none;
  std::string text_;  // the open item's text or arguments so far
  int64_t sequence_ = 0;
};

// Keeps a finished response for previous_response_id: the request's conversation followed by
// the response's output items, when the request allows storing and the response completed or
// stopped at its token limit.
void remember_response(ResponseStore& store, const ResponsesRequest& request, const ResponseBuilder& response);

// One stream event as SSE: "event: <its type>\ndata: <json>\n\n".
std::string responses_sse(const nlohmann::json& event);

}  // namespace dsv4::server

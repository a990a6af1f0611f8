// Completion parsing: generated text -> reasoning_content, content and DSML tool calls
// (spec §7.3, PROMPT-FORMAT §3 and §5), streaming. Matches the official
// parse_message_from_completion_text on well-formed output; anything malformed or unfinished
// degrades to plain content with `malformed` set, never an error or a crash.
//
// Layout: thinking mode  {reasoning}</think>{content}[\n\n<｜DSML｜tool_calls>…</｜DSML｜tool_calls>]<EOS>
//         chat mode      {content}[\n\n<｜DSML｜tool_calls>…</｜DSML｜tool_calls>]<EOS>
// The V4.1 parser also takes V4.1's tags, <｜DSML｜ calls> … (v4.1 §11.3), and accepts both
// dialects, as the spec advises; a block's tags follow the dialect its opening tag is in.
//
// Usage:
//   CompletionParser p(ThinkingMode::thinking);
//   for (auto& piece : stream) for (auto& ev : p.feed(piece)) send(ev);
//   std::vector<CompletionEvent> tail; ParsedCompletion msg = p.finish(&tail);
// Feeding the same text in any split (even one byte at a time) gives the same concatenated
// deltas and the same final message. Deltas never split a UTF-8 character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/chat_encoding.h"

namespace dsv4::text {

struct ParsedCompletion {
  std::string reasoning_content;
  std::string content;
  std::vector<ToolCall> tool_calls;  // id empty; arguments = JSON object text, Python style
  bool finished = false;   // the end-of-sentence token was seen
  bool malformed = false;  // DSML or markers out of place; the raw text went to content
  std::string error;       // first problem found, when malformed
};

enum class CompletionEventKind {
  reasoning_delta,      // text
  content_delta,        // text
  tool_call_started,    // tool_index, name
  tool_call_arguments,  // tool_index, text = the complete arguments JSON
  tool_call_finished,   // tool_index
};

struct CompletionEvent {
  CompletionEventKind kind;
  std::string text;
  int tool_index = -1;
  std::string name;
};

class CompletionParser {
 public:
  // `revision`: the chat encoder the prompt was rendered with; it decides the DSML dialects.
  explicit CompletionParser(ThinkingMode mode, EncoderRevision revision = EncoderRevision::v4);

  // Consumes more generated text; returns what became certain. A tool call is reported
  // (started, arguments, finished) once its </｜DSML｜invoke> has arrived.
  std::vector<CompletionEvent> feed(std::string_view text);
  // Ends the stream: flushes held-back text (into events when given) and returns the message.
  ParsedCompletion finish(std::vector<CompletionEvent>* events = nullptr);

  // One-shot convenience.
  static ParsedCompletion parse(std::string_view completion, ThinkingMode mode,
                                EncoderRevision revision = EncoderRevision::v4);

 private:
  enum class State { reasoning, content, block, invoke, after_block, done };
  void run(bool final, std::vector<CompletionEvent>& ev);
  bool step_reasoning(bool final, std::vector<CompletionEvent>& ev);
  bool step_content(bool final, std::vector<CompletionEvent>& ev);
  bool step_block(bool final, std::vector<CompletionEvent>& ev);
  bool step_invoke(bool final, std::vector<CompletionEvent>& ev);
  bool step_after_block(bool final, std::vector<CompletionEvent>& ev);
  void fail_block(const std::string& why, std::vector<CompletionEvent>& ev);
  void emit_reasoning(std::string text, std::vector<CompletionEvent>& ev);
  void emit_content(std::string text, std::vector<CompletionEvent>& ev);
  void consume(size_t n, bool keep_raw);
  void mark_malformed(const std::string& why);

  State state_;
  // The dialects a block may open in (one or two), each with its cue ("\n\n" + opening tag), and
  // the dialect of the block being parsed.
  std::vector<const chat::DsmlTags*> dialects_;
  std::vector<std::string> cues_;
  const chat::DsmlTags* tags_ = nullptr;
  std::string buf_;      // text received but not consumed yet
  size_t value_scan_ = 0;  // buf_ size at the last failed search for a parameter's end
  std::string raw_;      // consumed block text since the last complete tool call (for fallback)
  std::string name_;     // current invoke's function name
  // Current invoke's arguments: (name, JSON text of the value) in order of appearance.
  std::vector<std::pair<std::string, std::string>> args_;
  ParsedCompletion result_;
};

// {"role": "assistant", "content", "reasoning_content", "tool_calls": [{"type": "function",
// "function": {"name", "arguments"}}]} plus "finished"/"malformed"/"error" when set.
nlohmann::ordered_json completion_to_json(const ParsedCompletion& c);

}  // namespace dsv4::text

#include "text/completion_parser.h"

#include <algorithm>
#include <span>

#include "text/chat_tokens.h"
#include "text/py_json.h"
#include "text/utf8.h"

namespace dsv4::text {

using ojson = nlohmann::ordered_json;

namespace {

// Length of the longest suffix of s that is a proper prefix of one of the markers: that text
// might still become a marker, so it is held back.
size_t marker_holdback(std::string_view s, std::span<const std::string_view> markers) {
  size_t hold = 0;
  for (std::string_view m : markers) {
    const size_t maxk = std::min(s.size(), m.size() - 1);
    for (size_t k = maxk; k > hold; --k)
      if (s.substr(s.size() - k) == m.substr(0, k)) {
        hold = k;
        break;
      }
  }
  return hold;
}

// How much of s can be emitted now: everything but a possible marker start and an unfinished
// UTF-8 character.
size_t emittable(std::string_view s, bool final, std::span<const std::string_view> markers) {
  if (final) return s.size();
  size_t n = s.size() - marker_holdback(s, markers);
  n -= utf8_incomplete_tail(s.substr(0, n));
  return n;
}

// Longest invoke / parameter header accepted (the part up to and including '">').
constexpr size_t kMaxHeader = 1024;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// True when s is a (possibly empty) proper prefix of m: more input could still complete m.
bool could_become(std::string_view s, std::string_view m) { return s.size() < m.size() && m.substr(0, s.size()) == s; }

}  // namespace

CompletionParser::CompletionParser(ThinkingMode mode, EncoderRevision revision)
    : state_(mode == ThinkingMode::thinking ? State::reasoning : State::content) {
  for (const chat::DsmlTags* t : dsml_dialects(revision)) dialects_.push_back(t);
  for (const chat::DsmlTags* t : dialects_) cues_.push_back(std::string(chat::kBeforeToolCalls) + std::string(t->calls_open));
}

void CompletionParser::mark_malformed(const std::string& why) {
  if (!result_.malformed) result_.error = why;
  result_.malformed = true;
}

void CompletionParser::emit_reasoning(std::string text, std::vector<CompletionEvent>& ev) {
  if (text.empty()) return;
  result_.reasoning_content += text;
  ev.push_back({CompletionEventKind::reasoning_delta, std::move(text), -1, {}});
}

void CompletionParser::emit_content(std::string text, std::vector<CompletionEvent>& ev) {
  if (text.empty()) return;
  result_.content += text;
  ev.push_back({CompletionEventKind::content_delta, std::move(text), -1, {}});
}

void CompletionParser::consume(size_t n, bool keep_raw) {
  if (n == 0) return;
  if (keep_raw) raw_.append(buf_, 0, n);
  buf_.erase(0, n);
  value_scan_ = 0;
}

// Reasoning runs up to </think>. An EOS before it ends the message (reasoning was never closed).
bool CompletionParser::step_reasoning(bool final, std::vector<CompletionEvent>& ev) {
  const size_t end = buf_.find(chat::kThinkEnd);
  const size_t eos = buf_.find(chat::kEos);
  if (eos != std::string::npos && (end == std::string::npos || eos < end)) {
    emit_reasoning(buf_.substr(0, eos), ev);
    mark_malformed("end of sentence inside the reasoning (no </think>)");
    result_.finished = true;
    consume(eos + chat::kEos.size(), false);
    state_ = State::done;
    return true;
  }
  if (end != std::string::npos) {
    emit_reasoning(buf_.substr(0, end), ev);
    consume(end + chat::kThinkEnd.size(), false);
    state_ = State::content;
    return true;
  }
  static constexpr std::string_view kMarkers[] = {chat::kThinkEnd, chat::kEos};
  const size_t n = emittable(buf_, final, kMarkers);
  emit_reasoning(buf_.substr(0, n), ev);
  consume(n, false);
  return false;
}

// Content runs up to EOS or up to "\n\n" + a dialect's opening tag (the first one found), which
// opens the tool-call block in that dialect.
bool CompletionParser::step_content(bool final, std::vector<CompletionEvent>& ev) {
  size_t cue = std::string::npos, which = 0;
  for (size_t d = 0; d < cues_.size(); ++d) {
    const size_t at = buf_.find(cues_[d]);
    if (at < cue) cue = at, which = d;
  }
  const size_t eos = buf_.find(chat::kEos);
  if (eos != std::string::npos && (cue == std::string::npos || eos < cue)) {
    emit_content(buf_.substr(0, eos), ev);
    result_.finished = true;
    consume(eos + chat::kEos.size(), false);
    state_ = State::done;
    return true;
  }
  if (cue != std::string::npos) {
    emit_content(buf_.substr(0, cue), ev);
    consume(cue, false);
    raw_.clear();
    consume(cues_[which].size(), true);
    tags_ = dialects_[which];
    state_ = State::block;
    return true;
  }
  std::string_view markers[3];  // the cues and EOS
  size_t k = 0;
  for (const std::string& c : cues_) markers[k++] = c;
  markers[k++] = chat::kEos;
  const size_t n = emittable(buf_, final, std::span(markers, k));
  emit_content(buf_.substr(0, n), ev);
  consume(n, false);
  return false;
}

// The unparsed block text becomes content; parsing continues as content after it.
void CompletionParser::fail_block(const std::string& why, std::vector<CompletionEvent>& ev) {
  mark_malformed(why);
  emit_content(std::move(raw_), ev);
  raw_.clear();
  state_ = State::content;
}

// Inside <｜DSML｜tool_calls>: invokes, separated by whitespace, until </｜DSML｜tool_calls> (in
// the block's dialect, tags_).
bool CompletionParser::step_block(bool final, std::vector<CompletionEvent>& ev) {
  size_t ws = 0;
  while (ws < buf_.size() && is_space(buf_[ws])) ++ws;
  consume(ws, true);
  if (buf_.empty()) {
    if (final) fail_block("unfinished tool-call block", ev);
    return final;
  }
  if (buf_.rfind(tags_->calls_close, 0) == 0) {
    consume(tags_->calls_close.size(), true);
    raw_.clear();
    state_ = State::after_block;
    return true;
  }
  if (buf_.rfind(tags_->invoke_open_prefix, 0) == 0) {
    const size_t close = buf_.find("\">", tags_->invoke_open_prefix.size());
    // Names are short; a huge header is garbage (and bounding it keeps re-scans cheap).
    if ((close == std::string::npos ? buf_.size() : close) > kMaxHeader) {
      fail_block("bad invoke header", ev);
      return true;
    }
    if (close == std::string::npos) {
      // The name may still be arriving; a newline or '<' in it means it never will.
      if (buf_.find_first_of("\n<", tags_->invoke_open_prefix.size()) != std::string::npos) {
        fail_block("bad invoke header", ev);
        return true;
      }
      if (final) fail_block("unfinished invoke header", ev);
      return final;
    }
    name_ = buf_.substr(tags_->invoke_open_prefix.size(), close - tags_->invoke_open_prefix.size());
    if (name_.empty() || name_.find_first_of("\n<") != std::string::npos) {
      fail_block("bad invoke header", ev);
      return true;
    }
    args_.clear();
    consume(close + 2, true);
    state_ = State::invoke;
    return true;
  }
  if (!final && (could_become(buf_, tags_->calls_close) || could_become(buf_, tags_->invoke_open_prefix))) return false;
  fail_block("unexpected text in tool-call block", ev);
  return true;
}

// Inside one invoke: parameters until </｜DSML｜invoke>.
bool CompletionParser::step_invoke(bool final, std::vector<CompletionEvent>& ev) {
  size_t ws = 0;
  while (ws < buf_.size() && is_space(buf_[ws])) ++ws;
  consume(ws, true);
  if (buf_.empty()) {
    if (final) fail_block("unfinished invoke", ev);
    return final;
  }
  if (buf_.rfind(tags_->invoke_close, 0) == 0) {
    consume(tags_->invoke_close.size(), true);
    raw_.clear();
    const int index = static_cast<int>(result_.tool_calls.size());
    ToolCall call;
    call.name = name_;
    // {"k": v, ...} with Python's separators, keys JSON-quoted.
    call.arguments = "{";
    for (size_t i = 0; i < args_.size(); ++i) {
      if (i) call.arguments += ", ";
      py_json_append_string(call.arguments, args_[i].first);
      call.arguments += ": ";
      call.arguments += args_[i].second;
    }
    call.arguments += "}";
    ev.push_back({CompletionEventKind::tool_call_started, "", index, call.name});
    ev.push_back({CompletionEventKind::tool_call_arguments, call.arguments, index, call.name});
    ev.push_back({CompletionEventKind::tool_call_finished, "", index, call.name});
    result_.tool_calls.push_back(std::move(call));
    state_ = State::block;
    return true;
  }
  if (buf_.rfind(tags_->param_open_prefix, 0) == 0) {
    // <｜DSML｜parameter name="K" string="true|false">VALUE</｜DSML｜parameter>
    static constexpr std::string_view kStringAttr = "\" string=\"";
    const size_t p = tags_->param_open_prefix.size();
    const size_t attr = buf_.find(kStringAttr, p);
    const size_t header_end = attr == std::string::npos ? std::string::npos : buf_.find("\">", attr + kStringAttr.size());
    if ((header_end == std::string::npos ? buf_.size() : header_end) > kMaxHeader) {
      fail_block("bad parameter header", ev);
      return true;
    }
    if (header_end == std::string::npos) {
      if (buf_.find('\n', p) != std::string::npos) {
        fail_block("bad parameter header", ev);
        return true;
      }
      if (final) fail_block("unfinished parameter header", ev);
      return final;
    }
    const std::string key = buf_.substr(p, attr - p);
    const std::string flag = buf_.substr(attr + kStringAttr.size(), header_end - attr - kStringAttr.size());
    if (key.empty() || key.find_first_of("\n<\"") != std::string::npos || (flag != "true" && flag != "false")) {
      fail_block("bad parameter header", ev);
      return true;
    }
    const size_t value_start = header_end + 2;
    // Values can be long (code, documents) and arrive in small pieces: resume the search for
    // the closing tag where the previous attempt stopped instead of rescanning the whole value.
    const size_t resume = value_scan_ > tags_->param_close.size() ? value_scan_ - tags_->param_close.size() : 0;
    const size_t value_end = buf_.find(tags_->param_close, std::max(value_start, resume));
    if (value_end == std::string::npos) {
      value_scan_ = buf_.size();
      if (final) fail_block("unfinished parameter value", ev);
      return final;
    }
    const std::string value = buf_.substr(value_start, value_end - value_start);
    for (const auto& [k, v] : args_)
      if (k == key) {
        fail_block("duplicate parameter '" + key + "'", ev);  // the official parser rejects it too
        return true;
      }
    std::string rendered;
    if (flag == "true") {
      py_json_append_string(rendered, value);
    } else if (ojson::accept(value)) {
      rendered = value;  // a JSON value, kept as written (as the official parser does)
    } else {
      py_json_append_string(rendered, value);  // not JSON: degrade to a string
    }
    args_.emplace_back(key, std::move(rendered));
    consume(value_end + tags_->param_close.size(), true);
    return true;
  }
  if (!final && (could_become(buf_, tags_->invoke_close) || could_become(buf_, tags_->param_open_prefix))) return false;
  fail_block("unexpected text in invoke", ev);
  return true;
}

// After </｜DSML｜tool_calls> only EOS may follow (whitespace tolerated).
bool CompletionParser::step_after_block(bool final, std::vector<CompletionEvent>& ev) {
  size_t ws = 0;
  while (ws < buf_.size() && is_space(buf_[ws])) ++ws;
  if (ws < buf_.size() && buf_.compare(ws, chat::kEos.size(), chat::kEos) == 0) {
    consume(ws + chat::kEos.size(), false);
    result_.finished = true;
    state_ = State::done;
    return true;
  }
  const std::string_view rest = std::string_view(buf_).substr(ws);
  if (rest.empty() || (!final && could_become(rest, chat::kEos))) return false;
  mark_malformed("text after the tool-call block");
  state_ = State::content;  // the stray text is content
  return true;
}

void CompletionParser::run(bool final, std::vector<CompletionEvent>& ev) {
  for (;;) {
    bool progressed = false;
    switch (state_) {
      case State::reasoning: progressed = step_reasoning(final, ev); break;
      case State::content: progressed = step_content(final, ev); break;
      case State::block: progressed = step_block(final, ev); break;
      case State::invoke: progressed = step_invoke(final, ev); break;
      case State::after_block: progressed = step_after_block(final, ev); break;
      case State::done:
        // Nothing may follow EOS (the official parser rejects it); it is dropped and flagged.
        if (!buf_.empty()) mark_malformed("text after the end-of-sentence token");
        buf_.clear();
        return;
    }
    if (!progressed) return;
    if (final && buf_.empty() && (state_ == State::content || state_ == State::reasoning || state_ == State::after_block))
      return;
  }
}

std::vector<CompletionEvent> CompletionParser::feed(std::string_view text) {
  std::vector<CompletionEvent> ev;
  buf_.append(text);
  run(false, ev);
  return ev;
}

ParsedCompletion CompletionParser::finish(std::vector<CompletionEvent>* events) {
  std::vector<CompletionEvent> ev;
  run(true, ev);
  if (events) *events = std::move(ev);
  // Control strings inside the parsed text mean the output did not follow the format.
  for (std::string_view tok : {chat::kBos, chat::kEos, chat::kThinkStart, chat::kThinkEnd, chat::kDsml}) {
    if (result_.content.find(tok) != std::string::npos) mark_malformed("'" + std::string(tok) + "' inside content");
    if (result_.reasoning_content.find(tok) != std::string::npos)
      mark_malformed("'" + std::string(tok) + "' inside reasoning");
  }
  return result_;
}

ParsedCompletion CompletionParser::parse(std::string_view completion, ThinkingMode mode, EncoderRevision revision) {
  CompletionParser p(mode, revision);
  p.feed(completion);
  return p.finish();
}

ojson completion_to_json(const ParsedCompletion& c) {
  ojson j = ojson::object();
  j["role"] = "assistant";
  j["content"] = utf8_sanitize(c.content);
  j["reasoning_content"] = utf8_sanitize(c.reasoning_content);
  j["tool_calls"] = ojson::array();
  for (const auto& t : c.tool_calls) {
    ojson f = ojson::object();
    f["name"] = utf8_sanitize(t.name);
    f["arguments"] = utf8_sanitize(t.arguments);
    ojson call = ojson::object();
    call["type"] = "function";
    call["function"] = std::move(f);
    j["tool_calls"].push_back(std::move(call));
  }
  j["finished"] = c.finished;
  if (c.malformed) {
    j["malformed"] = true;
    j["error"] = c.error;
  }
  return j;
}

}  // namespace dsv4::text

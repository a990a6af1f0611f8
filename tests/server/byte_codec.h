// Test-only TextCodec over a byte vocabulary (id = byte + 2; 0 = BOS, 1 = EOS), paired with
// test::FakeEngine(kByteVocab). It lets the server tests drive the whole HTTP stack without a
// tokenizer; the production codec is server::make_text_codec over dsv4::text.
#pragma once

#include "server/text_codec.h"
#include "text/dsml_constraint.h"
#include "text/json_constraint.h"
#include "text/output_stream.h"

namespace dsv4::test {

inline constexpr int64_t kByteVocab = 258;

class BytePassThroughStream : public text::TokenDecoder {
 public:
  std::string push(int32_t id) override { return id >= 2 ? std::string(1, char(id - 2)) : std::string(); }
  std::string finish() override { return {}; }
};

// Reasoning runs up to the first "|" in thinking mode; everything else is content, except
// that with tools, each "#" is a call of the first tool with arguments {"n": k} (k = its index),
// announced in one event and its arguments sent in a second one.
class ByteChatParser : public text::OutputParser {
 public:
  ByteChatParser(bool thinking, std::string tool) : in_reasoning_(thinking), tool_(std::move(tool)) {}
  void feed(std::string_view text, std::vector<text::CompletionEvent>& events) override {
    using K = text::CompletionEventKind;
    for (char c : text) {
      if (in_reasoning_ && c == '|') {
        in_reasoning_ = false;
        continue;
      }
      if (!in_reasoning_ && c == '#' && !tool_.empty()) {
        const int k = calls_++;
        events.push_back({K::tool_call_started, "", k, tool_});
        events.push_back({K::tool_call_arguments, "{\"n\": " + std::to_string(k) + "}", k, ""});
        events.push_back({K::tool_call_finished, "", k, ""});
        continue;
      }
      const K kind = in_reasoning_ ? K::reasoning_delta : K::content_delta;
      if (events.empty() || events.back().kind != kind) events.push_back({kind, "", -1, ""});
      events.back().text += c;
    }
  }
  void finish(std::vector<text::CompletionEvent>&) override {}

 private:
  bool in_reasoning_;
  std::string tool_;
  int calls_ = 0;
};

class ByteCodec : public server::TextCodec {
 public:
  // The served encoder: requests are parsed against its reasoning-effort levels. Set it before
  // the first request.
  text::EncoderRevision revision = text::EncoderRevision::v4;
  text::EncoderRevision encoder_revision() const override { return revision; }
  std::vector<int32_t> encode_text(std::string_view text) const override {
    std::vector<int32_t> ids = {0};
    for (unsigned char c : text) ids.push_back(int32_t(c) + 2);
    return ids;
  }
  Result<std::vector<int32_t>> encode_chat(const server::ChatRequest& r) const override {
    std::string all;
    for (const auto& m : r.messages) all += m.role + ":" + m.content + "\n";
    all += r.thinking.mode == server::ThinkingMode::chat ? "A:" : "A+";
    return encode_text(all);
  }
  // Each message is one line: a message opens after every '\n'.
  std::vector<int64_t> message_starts(std::span<const int32_t> prompt) const override {
    std::vector<int64_t> starts;
    for (size_t i = 1; i < prompt.size(); ++i)
      if (prompt[i - 1] == int32_t('\n') + 2) starts.push_back(int64_t(i));
    return starts;
  }
  std::unique_ptr<text::TokenDecoder> new_token_decoder() const override {
    return std::make_unique<BytePassThroughStream>();
  }
  std::unique_ptr<text::OutputParser> new_output_parser(const server::ChatRequest& r) const override {
    if (strict_calls(r)) return text::completion_output_parser(r.thinking.mode, revision);
    std::string tool;
    if (!r.tools.empty() && r.tool_choice != server::ToolChoice::none) tool = r.tools[0].name;
    if (r.tool_choice == server::ToolChoice::named) tool = r.tool_choice_name;
    return std::make_unique<ByteChatParser>(r.thinking.mode != server::ThinkingMode::chat, tool);
  }
  // '|' plays `</think>` and '#' the opening of a tool call (except for strict tools in chat
  // mode, see strict_calls): required / named tool_choice force
  // a '#' at the start of the answer, none bans it. A structured output constrains the answer
  // with the production JsonConstraint over the byte vocabulary.
  text::OutputSteering steering(const server::ChatRequest& r) const override {
    text::OutputSteering s;
    if (r.thinking.mode != server::ThinkingMode::chat) {
      s.answer_start_token = int32_t('|') + 2;
      s.thinking_budget = r.thinking.budget;
    }
    if (r.output.grammar) s.constraint = std::make_shared<text::JsonConstraint>(r.output.grammar, byte_vocab());
    if (r.tools.empty()) return s;
    if (strict_calls(r)) {  // real DSML in bytes, the production rule; required opens the block
      std::vector<text::DsmlTool> tools;
      for (const auto& t : r.tools) tools.push_back({t.name, t.strict});
      std::string open;
      if (r.tool_choice == server::ToolChoice::required)
        open = "\n\n" + std::string(text::dsml_tags(revision).calls_open) + "\n<" + std::string(text::chat::kDsml);
      s.constraint = std::make_shared<text::DsmlConstraint>(text::dsml_grammar(tools, revision), byte_vocab(), -1, open);
      const auto ids = encode_text(open);
      s.answer_prefix.assign(ids.begin() + 1, ids.end());
      return s;
    }
    if (r.tool_choice == server::ToolChoice::none) s.banned_tokens = {int32_t('#') + 2};
    if (r.tool_choice == server::ToolChoice::required || r.tool_choice == server::ToolChoice::named)
      s.answer_prefix = {int32_t('#') + 2};
    return s;
  }
  std::string token_text(int32_t id) const override { return id >= 2 ? std::string(1, char(id - 2)) : "<s>"; }

  // Strict tools in chat mode, auto or required: the answer is DSML (the production parser and
  // constraint over bytes).
  static bool strict_calls(const server::ChatRequest& r) {
    bool strict = false;
    for (const auto& t : r.tools) strict = strict || t.strict;
    return strict && r.thinking.mode == server::ThinkingMode::chat &&
           (r.tool_choice == server::ToolChoice::auto_ || r.tool_choice == server::ToolChoice::required);
  }

  static std::shared_ptr<const text::VocabTrie> byte_vocab() {
    static const auto v = [] {
      std::vector<std::string> bytes(static_cast<size_t>(kByteVocab));
      for (int b = 0; b < 256; ++b) bytes[size_t(b) + 2] = std::string(1, char(b));
      return std::make_shared<const text::VocabTrie>(std::move(bytes), 1);
    }();
    return v;
  }
};

}  // namespace dsv4::test

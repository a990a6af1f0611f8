#include "server/text_codec.h"

#include <memory>
#include <mutex>

#include "text/chat_encoding.h"
#include "text/json_constraint.h"
#include "text/message_starts.h"
#include "text/output_steering.h"
#include "text/tokenizer.h"

namespace dsv4::server {

namespace {

class Dsv4TextCodec : public TextCodec {
 public:
  Dsv4TextCodec(text::Tokenizer tok, text::EncoderRevision revision)
      : tok_(std::move(tok)), starts_(tok_), revision_(revision) {}

  text::EncoderRevision encoder_revision() const override { return revision_; }

  Result<std::vector<int32_t>> encode_chat(const ChatRequest& r) const override {
    text::ChatOptions o;
    o.revision = revision_;
    o.thinking = r.thinking;
    o.drop_thinking = !r.keep_thinking;
    if (!r.tools.empty() && r.tool_choice != ToolChoice::none) o.tools = r.tools;
    o.response_format = r.output.prompt_format;
    auto rendered = text::render_chat(r.messages, o);
    if (!rendered.ok()) return Status::invalid_argument(rendered.status().message());
    return tok_.encode(*rendered);
  }

  std::vector<int64_t> message_starts(std::span<const int32_t> prompt) const override { return starts_.find(prompt); }

  std::vector<int32_t> encode_text(std::string_view t) const override { return text::raw_prompt_ids(tok_, t); }

  std::unique_ptr<text::TokenDecoder> new_token_decoder() const override { return text::token_decoder(tok_); }

  std::unique_ptr<text::OutputParser> new_output_parser(const ChatRequest& r) const override {
    return text::completion_output_parser(r.thinking.mode, revision_);
  }

  text::OutputSteering steering(const ChatRequest& r) const override {
    text::ToolSteering tools;
    if (!r.tools.empty()) {
      tools.choice = r.tool_choice;
      tools.name = r.tool_choice_name;
      if (const text::ToolDefinition* named = text::find_tool(r.tools, r.tool_choice_name)) {
        const auto& p = named->parameters;
        tools.has_parameters = p.contains("properties") && p["properties"].is_object() && !p["properties"].empty();
      }
      bool strict = false;
      std::vector<text::DsmlTool> callable;
      for (const auto& t : r.tools) {
        strict = strict || t.strict;
        callable.push_back({t.name, t.strict});
      }
      if (strict) {
        tools.grammar = text::dsml_grammar(callable, revision_);
        tools.vocab = vocab_trie();
      }
    }
    text::OutputSteering s = text::chat_steering(tok_, revision_, r.thinking, tools);
    if (r.output.grammar) s.constraint = std::make_shared<text::JsonConstraint>(r.output.grammar, vocab_trie());
    return s;
  }

  std::string token_text(int32_t id) const override {
    auto b = tok_.token_bytes(id);
    return b ? std::string(*b) : std::string();
  }

 private:
  // Built on the first structured output or strict tool (about 0.1 s for the V4 vocabulary), then shared.
  std::shared_ptr<const text::VocabTrie> vocab_trie() const {
    std::call_once(vocab_once_, [&] { vocab_ = std::make_shared<const text::VocabTrie>(tok_); });
    return vocab_;
  }

  text::Tokenizer tok_;
  text::MessageStarts starts_;
  text::EncoderRevision revision_;
  mutable std::once_flag vocab_once_;
  mutable std::shared_ptr<const text::VocabTrie> vocab_;
};

}  // namespace

Result<std::unique_ptr<TextCodec>> make_text_codec(const std::string& model_dir,
                                                   const std::string& fallback_tokenizer_dir,
                                                   text::EncoderRevision revision) {
  DSV4_ASSIGN_OR_RETURN(text::Tokenizer tok, text::load_tokenizer_for_model(model_dir, fallback_tokenizer_dir));
  return std::unique_ptr<TextCodec>(new Dsv4TextCodec(std::move(tok), revision));
}

}  // namespace dsv4::server

#include "server/text_codec.h"

#include <atomic>
#include <cstdio>

#include "text/chat_encoding.h"
#include "text/chat_tokens.h"
#include "text/completion_parser.h"
#include "text/message_starts.h"
#include "text/tokenizer.h"

namespace dsv4::server {

namespace {

class StreamDecoderText : public TokenTextStream {
 public:
  explicit StreamDecoderText(text::Tokenizer tok) : dec_(std::move(tok)) {}
  std::string push(int32_t id) override { return dec_.push(id); }
  std::string finish() override { return dec_.finish(); }

 private:
  text::StreamDecoder dec_;
};

// text::CompletionParser events -> OpenAI chat deltas. A tool call is announced (id, name) and
// its arguments sent as one piece once the parser has the whole invoke.
class CompletionParserAdapter : public ChatOutputParser {
 public:
  explicit CompletionParserAdapter(text::ThinkingMode mode) : parser_(mode) {}
  ChatDelta push(std::string_view t) override { return convert(parser_.feed(t)); }
  ChatDelta finish() override {
    std::vector<text::CompletionEvent> tail;
    parser_.finish(&tail);
    return convert(tail);
  }

 private:
  ChatDelta convert(const std::vector<text::CompletionEvent>& events) {
    ChatDelta d;
    for (const auto& e : events) {
      switch (e.kind) {
        case text::CompletionEventKind::reasoning_delta: d.reasoning += e.text; break;
        case text::CompletionEventKind::content_delta: d.content += e.text; break;
        case text::CompletionEventKind::tool_call_started: {
          ToolCallDelta t;
          t.index = e.tool_index;
          t.name = e.name;
          t.id = new_call_id();
          d.tool_calls.push_back(std::move(t));
          break;
        }
        case text::CompletionEventKind::tool_call_arguments: {
          ToolCallDelta t;
          t.index = e.tool_index;
          t.arguments = e.text;
          d.tool_calls.push_back(std::move(t));
          break;
        }
        case text::CompletionEventKind::tool_call_finished: break;
      }
    }
    return d;
  }
  static std::string new_call_id() {
    static std::atomic<uint64_t> counter{1};
    char buf[40];
    std::snprintf(buf, sizeof buf, "call_%016llx", (unsigned long long)counter.fetch_add(1) * 0x9e3779b97f4a7c15ull);
    return buf;
  }
  text::CompletionParser parser_;
};

class Dsv4TextCodec : public TextCodec {
 public:
  Dsv4TextCodec(text::Tokenizer tok, text::EncoderRevision revision)
      : tok_(std::move(tok)), starts_(tok_), revision_(revision) {
    bos_ = tok_.token_id(text::chat::kBos).value_or(0);
    think_end_ = tok_.token_id(text::chat::kThinkEnd).value_or(-1);
    dsml_ = tok_.token_id(text::chat::kDsml).value_or(-1);
  }

  text::EncoderRevision encoder_revision() const override { return revision_; }

  Result<std::vector<int32_t>> encode_chat(const ChatRequest& r) const override {
    DSV4_ASSIGN_OR_RETURN(auto messages, text::messages_from_json(r.messages));
    text::ChatOptions o;
    o.revision = revision_;
    o.thinking_mode = r.thinking == ThinkingMode::chat ? text::ThinkingMode::chat : text::ThinkingMode::thinking;
    o.reasoning_effort = r.reasoning_effort;
    o.drop_thinking = !r.keep_thinking;
    if (!r.tools.empty() && r.tool_choice != ToolChoice::none) o.tools = r.tools;
    auto rendered = text::render_chat(messages, o);
    if (!rendered.ok()) return Status::invalid_argument(rendered.status().message());
    return tok_.encode(*rendered);
  }

  std::vector<int64_t> message_starts(std::span<const int32_t> prompt) const override { return starts_.find(prompt); }

  std::vector<int32_t> encode_text(std::string_view t) const override {
    std::vector<int32_t> ids;
    if (t.substr(0, text::chat::kBos.size()) != text::chat::kBos) ids.push_back(bos_);
    auto rest = tok_.encode(t);
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
  }

  std::unique_ptr<TokenTextStream> new_text_stream() const override {
    return std::make_unique<StreamDecoderText>(tok_);
  }

  std::unique_ptr<ChatOutputParser> new_chat_parser(const ChatRequest& r) const override {
    return std::make_unique<CompletionParserAdapter>(r.thinking == ThinkingMode::chat ? text::ThinkingMode::chat
                                                                                     : text::ThinkingMode::thinking);
  }

  // The forced openings end where the tokenizer splits a complete call anyway (at the
  // `｜DSML｜` token, or after `">\n` / `">\n\n`), so the model continues from the ids it
  // would have produced itself:
  //   required  \n\n<｜DSML｜tool_calls>\n<｜DSML｜            the model names the function
  //   named     \n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="NAME">\n   then its parameters
  // (">\n\n for a function without parameters, as the encoder writes an empty invoke).
  OutputSteering steering(const ChatRequest& r) const override {
    OutputSteering s;
    // BOS only opens a conversation (spec §7); sampled inside an answer it would be shown as
    // text (issue #16 saw it once), so an answer never contains it.
    s.banned_tokens.push_back(bos_);
    if (r.thinking != ThinkingMode::chat && think_end_ >= 0) {
      s.answer_start_token = think_end_;
      s.thinking_budget = r.thinking_budget;
    }
    if (r.tools.empty()) return s;
    std::string open = std::string(text::chat::kBeforeToolCalls) + std::string(text::chat::kToolCallsOpen) + "\n";
    switch (r.tool_choice) {
      case ToolChoice::auto_: break;
      case ToolChoice::none:
        // Without the tools section the model has no reason to call; where `｜DSML｜` is one
        // token (the V4 tokenizer), banning it rules a call out.
        if (dsml_ >= 0) s.banned_tokens.push_back(dsml_);
        break;
      case ToolChoice::required:
        open += "<";
        open += text::chat::kDsml;
        s.answer_prefix = tok_.encode(open);
        break;
      case ToolChoice::named: {
        bool has_parameters = false;
        for (const auto& t : r.tools) {
          if (t["function"]["name"] != r.tool_choice_name) continue;
          const auto& f = t["function"];
          has_parameters = f.contains("parameters") && f["parameters"].contains("properties") &&
                           f["parameters"]["properties"].is_object() && !f["parameters"]["properties"].empty();
        }
        open += text::chat::kInvokeOpenPrefix;
        open += r.tool_choice_name;
        open += has_parameters ? "\">\n" : "\">\n\n";
        s.answer_prefix = tok_.encode(open);
        break;
      }
    }
    return s;
  }

  std::string token_text(int32_t id) const override {
    auto b = tok_.token_bytes(id);
    return b ? std::string(*b) : std::string();
  }

 private:
  text::Tokenizer tok_;
  text::MessageStarts starts_;
  text::EncoderRevision revision_;
  int32_t bos_ = 0;
  int32_t think_end_ = -1;  // `</think>`
  int32_t dsml_ = -1;       // `｜DSML｜`, when the tokenizer has it as one token
};

}  // namespace

Result<std::unique_ptr<TextCodec>> make_text_codec(const std::string& model_dir,
                                                   const std::string& fallback_tokenizer_dir,
                                                   text::EncoderRevision revision) {
  DSV4_ASSIGN_OR_RETURN(text::Tokenizer tok, text::load_tokenizer_for_model(model_dir, fallback_tokenizer_dir));
  return std::unique_ptr<TextCodec>(new Dsv4TextCodec(std::move(tok), revision));
}

}  // namespace dsv4::server

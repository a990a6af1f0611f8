#include "text/output_stream.h"

namespace dsv4::text {

namespace {

class TokenizerDecoder final : public TokenDecoder {
 public:
  explicit TokenizerDecoder(Tokenizer tok) : dec_(std::move(tok)) {}
  std::string push(int32_t id) override { return dec_.push(id); }
  std::string finish() override { return dec_.finish(); }

 private:
  StreamDecoder dec_;
};

class DsmlOutputParser final : public OutputParser {
 public:
  DsmlOutputParser(ThinkingMode mode, EncoderRevision revision) : parser_(mode, revision) {}
  void feed(std::string_view text, std::vector<CompletionEvent>& events) override {
    for (auto& e : parser_.feed(text)) events.push_back(std::move(e));
  }
  void finish(std::vector<CompletionEvent>& events) override {
    std::vector<CompletionEvent> tail;
    parser_.finish(&tail);
    for (auto& e : tail) events.push_back(std::move(e));
  }

 private:
  CompletionParser parser_;
};

}  // namespace

std::unique_ptr<TokenDecoder> token_decoder(Tokenizer tokenizer) {
  return std::make_unique<TokenizerDecoder>(std::move(tokenizer));
}

std::unique_ptr<OutputParser> completion_output_parser(ThinkingMode mode, EncoderRevision revision) {
  return std::make_unique<DsmlOutputParser>(mode, revision);
}

OutputStream::OutputStream(std::unique_ptr<TokenDecoder> decoder, std::unique_ptr<OutputParser> parser,
                           std::vector<std::string> stops)
    : decoder_(std::move(decoder)), parser_(std::move(parser)), stop_(std::move(stops)) {}

bool OutputStream::push(int32_t id, Piece& piece) {
  if (stop_.stopped()) return false;
  tokens_ += 1;
  emit(stop_.feed(decoder_->push(id)), piece);
  return true;
}

void OutputStream::finish(Piece& piece) {
  if (!stop_.stopped()) {
    emit(stop_.feed(decoder_->finish()), piece);
    if (!stop_.stopped()) emit(stop_.flush(), piece);
  }
  if (!parser_) return;
  const size_t first = piece.events.size();
  parser_->finish(piece.events);
  note_tool_calls(piece.events, first);
}

void OutputStream::note_tool_calls(const std::vector<CompletionEvent>& events, size_t first) {
  for (size_t i = first; i < events.size(); ++i)
    if (events[i].kind == CompletionEventKind::tool_call_started) saw_tool_calls_ = true;
}

void OutputStream::emit(const std::string& text, Piece& piece) {
  if (text.empty()) return;
  text_ += text;
  piece.text += text;
  if (!parser_) return;
  const size_t first = piece.events.size();
  parser_->feed(text, piece.events);
  note_tool_calls(piece.events, first);
}

}  // namespace dsv4::text

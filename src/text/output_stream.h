// One generation's output as every front end shows it (the HTTP APIs, `dsv4 run`, `dsv4 chat`):
// token ids are detokenized on UTF-8 character boundaries, the text is cut at the first stop
// string, and what is shown goes through the completion parser, which splits it into reasoning,
// content and tool calls (spec §7.3). The front ends differ only in how they present the
// pieces (JSON, SSE frames, a terminal), so this is written once.
//
// The decoder and the parser are interfaces: the production ones come from the tokenizer and
// the DSML completion parser (token_decoder, completion_output_parser below); the server's
// tests plug in a byte vocabulary of their own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/completion_parser.h"
#include "text/stop_strings.h"
#include "text/tokenizer.h"

namespace dsv4::text {

// Token ids -> text that always ends on a UTF-8 character boundary.
class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  virtual std::string push(int32_t id) = 0;
  // End of generation: what is held back (an unfinished character becomes U+FFFD).
  virtual std::string finish() = 0;
};

// Output text -> reasoning / content / tool-call events.
class OutputParser {
 public:
  virtual ~OutputParser() = default;
  virtual void feed(std::string_view text, std::vector<CompletionEvent>& events) = 0;
  // End of generation: what is held back; a malformed tool-call block comes back as content.
  virtual void finish(std::vector<CompletionEvent>& events) = 0;
};

// StreamDecoder over the model's tokenizer.
std::unique_ptr<TokenDecoder> token_decoder(Tokenizer tokenizer);
// CompletionParser: the output format in `mode`, with the DSML dialect(s) of `revision`.
std::unique_ptr<OutputParser> completion_output_parser(ThinkingMode mode, EncoderRevision revision);

class OutputStream {
 public:
  // `parser` may be null: raw text (completions, `dsv4 run --raw`) is shown as it is.
  OutputStream(std::unique_ptr<TokenDecoder> decoder, std::unique_ptr<OutputParser> parser,
               std::vector<std::string> stops);

  struct Piece {
    std::string text;                     // new output text
    std::vector<CompletionEvent> events;  // the parser's events for it (none without a parser)
  };

  // A generated token; its text (if any became certain) is appended to `piece`. Returns false,
  // appending nothing, once a stop string has matched: tokens generated after the one that
  // completed it (in flight, or later in the same speculative round) are not output.
  bool push(int32_t id, Piece& piece);
  // The end of generation: the text held back by the decoder and the stop matcher (unless a
  // stop string matched), and the parser's last events.
  void finish(Piece& piece);

  bool stopped() const { return stop_.stopped(); }
  // The stop string that ended the output, or empty.
  const std::string& stop_sequence() const { return stop_.matched(); }
  // Tokens output so far: every token pushed up to and including the one that completed a stop.
  int64_t tokens() const { return tokens_; }
  // All text output so far.
  const std::string& text() const { return text_; }
  bool saw_tool_calls() const { return saw_tool_calls_; }

 private:
  void emit(const std::string& text, Piece& piece);
  void note_tool_calls(const std::vector<CompletionEvent>& events, size_t first);

  std::unique_ptr<TokenDecoder> decoder_;
  std::unique_ptr<OutputParser> parser_;
  StopMatcher stop_;
  int64_t tokens_ = 0;
  std::string text_;
  bool saw_tool_calls_ = false;
};

}  // namespace dsv4::text

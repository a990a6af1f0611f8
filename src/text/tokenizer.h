// dsv4 tokenizer: loads an HF tokenizer.json of the DeepSeek-V3/V4 family (byte-level BPE,
// regex pre-tokenizer, added tokens) and reproduces HF tokenizers' encode/decode exactly
// (spec §7.1; TOKENIZER-FACTS.md). Encoding adds no BOS/EOS: the chat renderer writes them.
//
// Public API (stable, used by the server and the CLI):
//   auto tok = Tokenizer::from_file(".../tokenizer.json");   // Result<Tokenizer>
//   std::vector<int32_t> ids = tok->encode("text");          // never fails
//   std::string text = tok->decode(ids);                     // unknown ids are skipped
//   Result<std::string> t = tok->decode_checked(ids);        // unknown ids are an error
//   std::optional<int32_t> id = tok->token_id("<｜User｜>");
//   int32_t n = tok->vocab_size();                           // 129280 for V4
//   StreamDecoder sd(tok); std::string piece = sd.push(id);  // only whole UTF-8 characters
// A Tokenizer is cheap to copy (shared immutable state) and safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "text/added_tokens.h"

namespace dsv4::text {

class Tokenizer {
 public:
  // Loads tokenizer.json from a file / from its text.
  static Result<Tokenizer> from_file(const std::string& path);
  static Result<Tokenizer> from_json_text(std::string_view json_text);

  // Text -> ids, exactly as HF tokenizers' encode(text, add_special_tokens=False).
  // Added-token strings inside text become their ids. Bytes that are not valid UTF-8 (which
  // HF cannot receive) are encoded one by one as their byte tokens, so decode() gives them back.
  std::vector<int32_t> encode(std::string_view text) const;

  // Ids -> bytes (ByteLevel decoder; added tokens give their content). Ids unknown to this
  // tokenizer are skipped. The result may contain invalid UTF-8 if the ids split a character.
  std::string decode(std::span<const int32_t> ids) const;
  // Same, but an unknown id is an invalid_argument error naming it.
  Result<std::string> decode_checked(std::span<const int32_t> ids) const;
  // Bytes of one token, nullopt for an unknown id.
  std::optional<std::string_view> token_bytes(int32_t id) const;

  // Id of an added token (by content) or else of the vocab entry spelling exactly these bytes.
  std::optional<int32_t> token_id(std::string_view token) const;
  // Number of ids: one past the largest id (129280 for the official V4 file).
  int32_t vocab_size() const;
  bool is_special(int32_t id) const;  // added token flagged "special"
  const std::vector<AddedToken>& added_tokens() const;
  size_t merge_count() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The ids of a raw text prompt (`dsv4 run --raw`, /v1/completions): BOS first unless the text
// opens with it, then the text tokenized as it is.
std::vector<int32_t> raw_prompt_ids(const Tokenizer& tok, std::string_view text);

// Incremental decoder for streaming: push ids one at a time and get back only text that
// ends on a character boundary. Bytes that can never form valid UTF-8 become U+FFFD, so the
// output is always valid UTF-8. Unknown ids are ignored.
class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer) : tok_(std::move(tokenizer)) {}
  // Returns the newly completed text (possibly empty).
  std::string push(int32_t id);
  // Flushes what is held back (an unfinished sequence becomes U+FFFD).
  std::string finish();

 private:
  std::string take_complete(bool final);
  Tokenizer tok_;
  std::string pending_;
};

// model_dir/tokenizer.json if it exists, else fallback_dir/tokenizer.json (the caller's copy of the
// official V4 tokenizer: the CLI's data directory).
Result<Tokenizer> load_tokenizer_for_model(const std::string& model_dir, const std::string& fallback_dir);

}  // namespace dsv4::text

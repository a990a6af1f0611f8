#include "eval/oracle_drafts.h"

#include <algorithm>

namespace dsv4::eval {

OracleDrafts::OracleDrafts(runtime::Engine& inner, std::vector<int32_t> stream, int max_drafts,
                           std::function<int(int64_t round)> wrong_slot)
    : inner_(inner), stream_(std::move(stream)), max_drafts_(max_drafts), wrong_slot_(std::move(wrong_slot)) {}

Result<int> OracleDrafts::draft(runtime::Sequence& seq, int32_t anchor, const runtime::DraftOptions& options,
                                runtime::DraftChooser& chooser, int32_t* tokens, float* logits) {
  if (inner_.max_draft_tokens() > 0) DSV4_TRY(inner_.draft(seq, anchor, options, chooser, tokens, logits).status());
  const int64_t pos = seq.position();   // the anchor's
  const int wrong = wrong_slot_(rounds_++);
  int n = 0;
  for (; n < std::min(options.max_tokens, max_drafts_) && pos + 1 + n < int64_t(stream_.size()); ++n) {
    tokens[n] = stream_[size_t(pos + 1 + n)];
    if (n == wrong) tokens[n] = int32_t((tokens[n] + 1) % config().vocab_size);
  }
  return n;
}

}  // namespace dsv4::eval

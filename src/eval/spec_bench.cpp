#include "eval/spec_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "eval/oracle_drafts.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace dsv4::eval {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

class Greedy final : public runtime::DraftChooser {
 public:
  int32_t choose(int, std::span<const float> z) override {
    return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
  }
};

struct DecodeRun {
  std::vector<int32_t> tokens;
  double tok_s = 0;
  runtime::GenerationEvent finished;
};

// Greedy decode of n tokens after `prompt` through a scheduler, with a fixed draft count per
// round, or with the scheduler's adaptive one (runtime/draft_planner.h). Timed from the token
// after the first `warmup` (the prefill's token and the first round, whose steps still size the
// scratch) to the last, so that runs of different round lengths are compared in their steady
// state.
Result<DecodeRun> decode(runtime::Engine& e, const std::vector<int32_t>& prompt, int64_t n, int64_t warmup,
                         bool adaptive = false) {
  runtime::SchedulerOptions o;
  o.max_running = 1;
  o.cache_bytes = 0;
  o.adaptive_drafting = adaptive;
  runtime::Scheduler s(e, o);
  runtime::GenerationRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = n;
  r.ignore_eos = true;
  DSV4_ASSIGN_OR_RETURN(auto g, s.submit(std::move(r)));
  DecodeRun run;
  std::vector<Clock::time_point> at;
  while (true) {
    auto ev = g->next(std::chrono::milliseconds(1000));
    if (!ev) continue;
    if (ev->kind == runtime::GenerationEvent::Kind::token) {
      run.tokens.push_back(ev->sampled.token);
      at.push_back(Clock::now());
    }
    if (ev->kind == runtime::GenerationEvent::Kind::finished) {
      if (ev->finish == runtime::FinishReason::error) return ev->status;
      run.finished = *ev;
      break;
    }
  }
  const size_t from = size_t(std::min<int64_t>(warmup, int64_t(at.size()) / 2));
  if (at.size() > from + 1)
    run.tok_s = double(at.size() - 1 - from) / std::chrono::duration<double>(at.back() - at[from]).count();
  return run;
}

}  // namespace

Result<SpecBenchReport> run_spec_bench(const SpecBenchOptions& opt) {
  runtime::EngineOptions eo;
  eo.threads = opt.threads;
  eo.populate_weights = opt.populate;
  eo.reread_small_pages = opt.reread_small_pages;
  // The same files twice, without and with the drafter: the weight pages are shared, not loaded
  // twice.
  runtime::EngineOptions with_drafter = eo;
  eo.speculative = false;
  with_drafter.speculative = true;
  std::unique_ptr<runtime::Engine> plain, spec;
  if (opt.world) {
    DSV4_ASSIGN_OR_RETURN(auto both, runtime::load_engines_on_world(*opt.world, opt.model_dir, {eo, with_drafter}));
    plain = std::move(both[0]);
    spec = std::move(both[1]);
  } else {
    DSV4_ASSIGN_OR_RETURN(plain, runtime::Engine::load(opt.model_dir, eo));
    DSV4_ASSIGN_OR_RETURN(spec, runtime::Engine::load(opt.model_dir, with_drafter));
  }
  SpecBenchReport r;
  r.model_dir = opt.model_dir;
  r.drafter = io::drafter_name(spec->config());
  r.block = spec->max_draft_tokens();
  if (r.block == 0) return Status::invalid_argument("bench --speculative: the checkpoint has no drafter");
  const int64_t V = spec->config().vocab_size;
  if (opt.context < 1 || opt.decode_tokens < 2) return Status::invalid_argument("bench --speculative: context >= 1, decode tokens >= 2");
  if (opt.repetitions < 1) return Status::invalid_argument("bench --speculative: repetitions >= 1");
  // The target's continuation covers the decode runs and the step-cost phase, whose verify chunks
  // advance one position per repetition and width.
  const int64_t continuation = std::max<int64_t>(opt.decode_tokens, int64_t(r.block + 1) * opt.repetitions) + r.block + 1;
  if (opt.context + continuation > spec->max_context())
    return Status::out_of_range("bench --speculative: context + decode tokens exceed the context limit");
  std::vector<int32_t> prompt(size_t(opt.context));
  uint64_t x = opt.seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& t : prompt) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = int32_t(2 + (x >> 33) % uint64_t(V - 2));
  }

  // The target's greedy continuation (also the oracle's drafts), and plain decode speed.
  const int64_t warmup = r.block + 1;
  DSV4_ASSIGN_OR_RETURN(DecodeRun base, decode(*plain, prompt, continuation, warmup));
  DSV4_ASSIGN_OR_RETURN(DecodeRun timed, decode(*plain, prompt, opt.decode_tokens, warmup));
  r.plain_tok_s = timed.tok_s;
  std::vector<int32_t> stream = prompt;
  stream.insert(stream.end(), base.tokens.begin(), base.tokens.end());

  // Step costs at the end of the prompt: a one-token step (speculation off), a draft, and a
  // verify step of each width (cut back to its anchor, so the position advances by one).
  std::vector<float> logits(size_t((r.block + 1) * V));
  std::vector<int32_t> drafts(size_t(r.block));
  {
    auto seq = plain->new_sequence();
    DSV4_TRY(plain->step(*seq, std::span(stream.data(), size_t(opt.context)), logits.data()));
    std::vector<double> t;
    for (int i = 0; i < opt.repetitions; ++i) {
      const auto t0 = Clock::now();
      DSV4_TRY(plain->step(*seq, std::span(&stream[size_t(opt.context + i)], 1), logits.data()));
      t.push_back(ms_since(t0));
    }
    r.step_ms = median(t);
  }
  {
    auto seq = spec->new_sequence();
    DSV4_TRY(spec->step(*seq, std::span(stream.data(), size_t(opt.context)), logits.data()));
    Greedy greedy;
    runtime::DraftOptions all;
    all.max_tokens = r.block;
    std::vector<double> draft_t;
    for (int w = 1; w <= r.block + 1; ++w) {
      std::vector<double> t;
      for (int i = 0; i < opt.repetitions; ++i) {
        const int64_t p = seq->position();
        auto t0 = Clock::now();
        DSV4_TRY(spec->draft(*seq, stream[size_t(p)], all, greedy, drafts.data(), logits.data()).status());
        draft_t.push_back(ms_since(t0));
        runtime::Sequence* s = seq.get();
        const std::span<const int32_t> chunk(&stream[size_t(p)], size_t(w));
        const runtime::Feed kind = runtime::Feed::verify;
        t0 = Clock::now();
        DSV4_TRY(spec->step(std::span(&s, 1), std::span(&chunk, 1), std::span(&kind, 1), logits.data()));
        DSV4_TRY(spec->commit(*seq, 1));
        t.push_back(ms_since(t0));
      }
      r.verify_ms.push_back(median(t));
    }
    r.draft_ms = median(draft_t);
  }

  // Decode with the checkpoint's own drafter, then at each accepted length.
  DSV4_ASSIGN_OR_RETURN(DecodeRun own, decode(*spec, prompt, opt.decode_tokens, warmup));
  if (own.tokens != timed.tokens) return Status::internal("bench --speculative: speculative greedy output differs from plain");
  r.own_tok_s = own.tok_s;
  r.own_accepted_per_round =
      own.finished.spec_rounds ? double(own.finished.accepted_tokens) / double(own.finished.spec_rounds) : 0;
  DSV4_ASSIGN_OR_RETURN(DecodeRun own_adaptive, decode(*spec, prompt, opt.decode_tokens, warmup, true));
  if (own_adaptive.tokens != timed.tokens) return Status::internal("bench --speculative: adaptive output differs from plain");
  r.own_adaptive_tok_s = own_adaptive.tok_s;
  for (int a = 0; a <= r.block; ++a) {
    OracleDrafts oracle(*spec, stream, r.block, [a](int64_t) { return a; });
    DSV4_ASSIGN_OR_RETURN(DecodeRun run, decode(oracle, prompt, opt.decode_tokens, warmup));
    OracleDrafts oracle_adaptive(*spec, stream, r.block, [a](int64_t) { return a; });
    DSV4_ASSIGN_OR_RETURN(DecodeRun adaptive, decode(oracle_adaptive, prompt, opt.decode_tokens, warmup, true));
    if (run.tokens != timed.tokens || adaptive.tokens != timed.tokens)
      return Status::internal("bench --speculative: controlled run's output differs from plain");
    SpecBenchReport::AtLength f;
    f.accepted = a;
    f.tok_s = run.tok_s;
    f.adaptive_tok_s = adaptive.tok_s;
    f.speedup = r.plain_tok_s > 0 ? run.tok_s / r.plain_tok_s : 0;
    f.implied_speedup = double(a + 1) * r.step_ms / (r.draft_ms + r.verify_ms.back());
    r.at_length.push_back(f);
  }
  return r;
}

nlohmann::ordered_json spec_bench_json(const SpecBenchReport& r) {
  nlohmann::ordered_json j;
  j["model_dir"] = r.model_dir;
  j["drafter"] = r.drafter;
  j["block"] = r.block;
  j["step_ms"] = r.step_ms;
  j["verify_ms"] = r.verify_ms;
  j["verify_cost_ratio"] = r.step_ms > 0 ? r.verify_ms.back() / r.step_ms : 0;
  j["draft_ms"] = r.draft_ms;
  j["plain_tok_s"] = r.plain_tok_s;
  j["own_drafter"] = {{"tok_s", r.own_tok_s},
                      {"accepted_per_round", r.own_accepted_per_round},
                      {"adaptive_tok_s", r.own_adaptive_tok_s}};
  auto& at = j["at_accepted_length"] = nlohmann::ordered_json::array();
  for (const auto& f : r.at_length)
    at.push_back({{"accepted", f.accepted},
                  {"tok_s", f.tok_s},
                  {"speedup", f.speedup},
                  {"implied_speedup", f.implied_speedup},
                  {"adaptive_tok_s", f.adaptive_tok_s}});
  return j;
}

std::string spec_bench_table(const SpecBenchReport& r) {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("model      %s\ndrafter    %s, %d drafts per round\n", r.model_dir.c_str(), r.drafter.c_str(), r.block);
  add("step       1 token %.2f ms (speculation off); draft %.2f ms\n", r.step_ms, r.draft_ms);
  out += "verify     ";
  for (size_t w = 0; w < r.verify_ms.size(); ++w) add("%zu: %.2f ms  ", w + 1, r.verify_ms[w]);
  add("\n           %d positions cost %.2fx one token\n", r.block + 1, r.step_ms > 0 ? r.verify_ms.back() / r.step_ms : 0.0);
  add("decode     plain %.2f tok/s; own drafter %.2f tok/s (%.2f accepted per round), adaptive %.2f tok/s\n",
      r.plain_tok_s, r.own_tok_s, r.own_accepted_per_round, r.own_adaptive_tok_s);
  out += "accepted   tok/s     speed-up  implied   adaptive tok/s\n";
  for (const auto& f : r.at_length)
    add("%-10d %-9.2f %-9.2f %-9.2f %.2f\n", f.accepted, f.tok_s, f.speedup, f.implied_speedup, f.adaptive_tok_s);
  return out;
}

}  // namespace dsv4::eval

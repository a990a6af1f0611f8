// How many drafts a speculative round should propose (issue #14, addendum §A5): the count that
// emits the most tokens per second, from what decode steps have cost at each count and how
// often the request's drafts are accepted.
//
// A round of k drafts emits 1 + a + a^2 + ... + a^k tokens on average when each draft is
// accepted with probability a once the ones before it were (a geometric model: DSpark's later
// stages are less sure, so it flatters long rounds a little; the measured costs and acceptance
// keep correcting it). A round costs one decode step with a verify chunk of k + 1 positions plus
// the draft; a plain step emits one token. On a machine where verifying more positions costs
// little (a GPU, or many cores per memory channel) the longest round wins; on a small CPU the
// verify cost grows with every position (issue #14 note: 2.6x a step at 6 positions on 2
// cores), and at middling acceptance a shorter round emits more per second.
#pragma once

#include <cstddef>
#include <vector>

namespace dsv4::runtime {

// Per request: the rate at which drafts are accepted, each round counting the drafts accepted
// and the one rejected (if any) as trials, with older rounds decaying. Starts at 1/2.
class AcceptanceRate {
 public:
  void record(int accepted, bool rejected);
  double rate() const { return hits_ / trials_; }

 private:
  double hits_ = 1, trials_ = 2;
};

class DraftPlanner {
 public:
  explicit DraftPlanner(int max_drafts);

  // A decode-only step took `seconds`; the longest verify chunk in it carried `drafts` drafts (0:
  // no verify chunk, a plain step). Moving average per draft count.
  void record(int drafts, double seconds);
  bool measured(int drafts) const { return cost_[std::size_t(drafts)] > 0; }
  // Whether the plain step and at least one draft count have been measured: cost() is then
  // defined for every count.
  bool ready() const;
  // The cost of a step with `drafts` drafts: measured, else on the line through the nearest
  // measured counts on either side (the plain step is count 0), else continuing the last two
  // measured counts' slope. REQUIRES: ready().
  double cost(int drafts) const;
  // Expected tokens per round of `drafts` drafts at acceptance `rate` (the geometric model).
  static double tokens_per_round(int drafts, double rate);
  // The draft count in 1..max_drafts that emits the most tokens per second at `rate` (the
  // shortest of equals). REQUIRES: ready().
  int best(double rate) const;
  // Whether rounds of `drafts` drafts at `rate` beat plain decoding by 5 % (a margin, so that
  // noise does not switch drafting on and off). REQUIRES: ready().
  bool pays(int drafts, double rate) const;

 private:
  std::vector<double> cost_;   // [drafts]: seconds (moving average); 0 = not measured
};

}  // namespace dsv4::runtime

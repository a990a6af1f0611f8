#include "runtime/draft_planner.h"

#include <algorithm>

#include "core/status.h"

namespace dsv4::runtime {

namespace {
// How much of the past a new round or step keeps: rounds decay faster than step costs, since
// acceptance follows the text (code, prose, a quoted passage) while costs follow the machine.
constexpr double kRoundDecay = 0.75;
constexpr double kStepDecay = 0.8;
constexpr double kMargin = 1.05;
}  // namespace

void AcceptanceRate::record(int accepted, bool rejected) {
  hits_ = kRoundDecay * hits_ + accepted;
  trials_ = kRoundDecay * trials_ + accepted + (rejected ? 1 : 0);
}

DraftPlanner::DraftPlanner(int max_drafts) : cost_(size_t(max_drafts + 1), 0.0) {}

void DraftPlanner::record(int drafts, double seconds) {
  DSV4_CHECK(drafts >= 0 && size_t(drafts) < cost_.size());
  double& c = cost_[size_t(drafts)];
  c = c <= 0 ? seconds : kStepDecay * c + (1 - kStepDecay) * seconds;
}

bool DraftPlanner::ready() const {
  if (!measured(0)) return false;
  for (size_t k = 1; k < cost_.size(); ++k)
    if (cost_[k] > 0) return true;
  return false;
}

double DraftPlanner::cost(int drafts) const {
  const int n = int(cost_.size());
  if (measured(drafts)) return cost_[size_t(drafts)];
  int lo = drafts - 1, hi = drafts + 1;
  while (lo >= 0 && !measured(lo)) --lo;
  while (hi < n && !measured(hi)) ++hi;
  if (hi >= n) {   // past the last measured count: the slope of the last two
    hi = lo;
    for (lo = hi - 1; !measured(lo); --lo) {}
  }
  const double slope = (cost_[size_t(hi)] - cost_[size_t(lo)]) / double(hi - lo);
  return std::max(cost_[size_t(lo)] + slope * double(drafts - lo), 1e-9);
}

double DraftPlanner::tokens_per_round(int drafts, double rate) {
  double sum = 0, term = 1;
  for (int i = 0; i <= drafts; ++i, term *= rate) sum += term;
  return sum;
}

int DraftPlanner::best(double rate) const {
  int best = 1;
  double best_speed = 0;
  for (int k = 1; k < int(cost_.size()); ++k) {
    const double speed = tokens_per_round(k, rate) / cost(k);
    if (speed > best_speed) {
      best = k;
      best_speed = speed;
    }
  }
  return best;
}

bool DraftPlanner::pays(int drafts, double rate) const {
  return tokens_per_round(drafts, rate) / cost(drafts) > kMargin / cost(0);
}

}  // namespace dsv4::runtime

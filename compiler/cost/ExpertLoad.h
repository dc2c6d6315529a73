//===- ExpertLoad.h - how unevenly routing fills the experts -*- C++ -*-===//
//
// A plan's shapes say how many rows each expert could receive, not how many
// it does: with dropless expert parallelism the step waits for the rank
// whose experts received the most. ExpertLoad holds the tokens each expert
// of each MoE layer received at each step, as a training log records them
// (moe-run --log: `expert_tokens` per layer), and gives the cost model the
// load of the busiest rank when `ep` ranks each hold a contiguous block of
// E / ep experts (as --mesh places them).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_EXPERTLOAD_H
#define MOEC_COMPILER_COST_EXPERTLOAD_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::cost {

struct ExpertLoad {
  /// Tokens per expert of each MoE layer, per step read.
  std::vector<std::vector<std::vector<double>>> steps;

  int64_t layers() const { return steps.empty() ? 0 : int64_t(steps[0].size()); }
  int64_t experts() const { return layers() ? int64_t(steps[0][0].size()) : 0; }

  /// The busiest of `ep` ranks' tokens over the mean rank's, at each step
  /// and layer (a step waits for its own busiest rank), averaged over both:
  /// 1 when routing is balanced, at most `ep`. Layers that routed nothing
  /// are left out; 1 when `ep` does not divide the experts.
  double busiestRank(int64_t ep) const;

  /// Why this load cannot be `function`'s of `plan` (its MoE layers, one
  /// `moe.routing_stats` each, and their experts differ), or "".
  std::string mismatch(const rt::LoadedPlan &plan, const plan::Function &function) const;
};

/// Reads the `expert_tokens` of every step of a moe-run log (JSON lines)
/// but step 0 (the untrained router's), unless it is the only one. Errors
/// name the file and line.
std::optional<ExpertLoad> readExpertLoad(const std::string &path, std::string &error);

/// The option's help, shared by `moec cost` and `moec explore`.
inline constexpr const char *kExpertLoadHelp =
    "A moe-run --log of this model: its experts' token counts set the load of the busiest "
    "expert-parallel rank (default: balanced routing)";

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_EXPERTLOAD_H

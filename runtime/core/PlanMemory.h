// PlanMemory.h - what running a plan's functions holds in memory, from the
// plan alone: moe-run checks it against the device before allocating,
// moec against its limit before writing the plan.
#ifndef MOEC_RUNTIME_CORE_PLANMEMORY_H
#define MOEC_RUNTIME_CORE_PLANMEMORY_H

#include "runtime/core/HumanBytes.h"
#include "runtime/core/Plan.h"

#include <string>
#include <vector>

namespace moec::rt {

/// Bytes, as doubles: the sums of a forged or huge plan cannot overflow.
struct PlanMemory {
  double parameters = 0; ///< each parameter tensor once
  double state = 0;      ///< optimizer state, each tensor once
  double arena = 0;      ///< the arena of the function that runs
  double total() const { return parameters + state + arena; }
  /// "X GiB (parameters A, optimizer state B, arena C)".
  std::string describe() const;
};

/// Running `functions` of `plan`: the first runs (its arena counts), the
/// others lend their parameters and state. Names the plan lacks are skipped.
PlanMemory planMemory(const LoadedPlan &plan, const std::vector<std::string> &functions);

/// The most memory any one function of `plan` needs (its parameters,
/// optimizer state and arena).
PlanMemory largestPlanMemory(const LoadedPlan &plan);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PLANMEMORY_H

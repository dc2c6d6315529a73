//===- Explorer.h - every strategy compiled and costed -*- C++ -*-===//
#ifndef MOEC_COMPILER_EXPLORE_EXPLORER_H
#define MOEC_COMPILER_EXPLORE_EXPLORER_H

#include "compiler/cost/Cluster.h"
#include "compiler/cost/PlanCost.h"
#include "compiler/explore/Strategy.h"

#include <optional>
#include <string>
#include <vector>

namespace moec::explore {

/// One strategy's fate: its predicted cost, or why it was dropped.
struct Outcome {
  Strategy strategy;
  CompileOptions options;
  std::optional<cost::PlanCost> cost; ///< absent when dropped
  std::string dropped;                ///< why: a compile error, or the memory
  /// A strategy dropped for its memory: what it would take on devices with
  /// room for it (how fast the cluster could be, were memory no limit).
  std::optional<cost::PlanCost> oversized;
  /// `moec MODEL ... -o PLAN` that builds it.
  std::string command(const std::string &plan = "plan.moeb") const;
};

/// Compiles `base` under each of `strategies` (on `jobs` threads, each with
/// its own MLIR context; plans of cuda clusters get kernel sources but no
/// NVRTC) and predicts each on `cluster`, with `load`'s routing when given
/// (cost::planCost). Strategies whose memory per rank exceeds the device's
/// are dropped with the figures. In the order given.
std::vector<Outcome> exploreStrategies(const CompileOptions &base,
                                       const std::vector<Strategy> &strategies,
                                       const cost::Cluster &cluster, unsigned jobs,
                                       const cost::ExpertLoad *load = nullptr);

/// Indices of `outcomes` that were not dropped, fastest first (ties: less
/// memory first).
std::vector<size_t> rankOutcomes(const std::vector<Outcome> &outcomes);

/// The outcomes no other beats in both step time and memory per rank, by
/// memory.
std::vector<size_t> paretoFront(const std::vector<Outcome> &outcomes);

} // namespace moec::explore

#endif // MOEC_COMPILER_EXPLORE_EXPLORER_H

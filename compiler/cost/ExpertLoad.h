//===- ExpertLoad.h - how unevenly routing fills the experts -*- C++ -*-===//
//
// A plan's shapes say how many rows each expert could receive, not how many
// it does: with dropless expert parallelism the step waits for the rank
// whose experts received the most. ExpertLoad holds the tokens each expert
// of each MoE layer received, as a training log records them (moe-run
// --log: `expert_tokens` per layer), and gives the cost model the load of
// the busiest rank when `ep` ranks each hold a contiguous block of E / ep
// experts (as --mesh places them).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_EXPERTLOAD_H
#define MOEC_COMPILER_COST_EXPERTLOAD_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::cost {

struct ExpertLoad {
  /// Tokens per expert of each MoE layer, averaged over the steps read.
  std::vector<std::vector<double>> layers;
  int64_t steps = 0; ///< how many steps were averaged

  /// The busiest of `ep` ranks' tokens over the mean rank's, averaged over
  /// the layers: 1 when routing is balanced, at most `ep`. 1 when `ep`
  /// does not divide a layer's experts.
  double busiestRank(int64_t ep) const;
};

/// Reads the `expert_tokens` of every step but the first (the untrained
/// router's) of a moe-run log (JSON lines); all of them when there is one.
/// Errors name the file and line.
std::optional<ExpertLoad> readExpertLoad(const std::string &path, std::string &error);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_EXPERTLOAD_H

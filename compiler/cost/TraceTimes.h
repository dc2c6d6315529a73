//===- TraceTimes.h - the measured seconds of a plan's steps -*- C++ -*-===//
//
// `moe-run --trace FILE` records every executed step of every training
// step (Chrome trace events: `args.step` the run, `args.index` the
// function's step, the members of a fusion group that runs member by member
// under their group's index). TraceTimes reads such a file into each
// step's seconds, so that the cost model's prediction of the traced plan
// can be set beside what ran (`moec cost --trace`) and a device's figures
// fitted to it (`moec calibrate`).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_TRACETIMES_H
#define MOEC_COMPILER_COST_TRACETIMES_H

#include "compiler/cost/FigureFit.h"
#include "compiler/cost/PlanCost.h"
#include "runtime/core/Status.h"

#include <map>
#include <string>
#include <vector>

namespace moec::cost {

struct TraceTimes {
  std::string path;
  /// The runs used: every recorded one after the first (whose time holds
  /// the libraries' start-up: oneDNN's JIT, cuBLAS's handles).
  int runs = 0;
  /// By the function's step index: the median over the runs of the step's
  /// seconds (its members' summed within a run), and its op (a fusion
  /// group's for its members).
  std::map<int, double> seconds;
  std::map<int, std::string> ops;
};

/// Reads a `moe-run --trace` file; errors name the file and what is wrong
/// with it (not JSON, no events, a single recorded run).
rt::StatusOr<TraceTimes> readTraceTimes(const std::string &path);

/// The compute steps of `cost` (the functionCost of the traced plan's
/// function) with their measured seconds. An error when the trace's ops
/// are not the function's (a trace of another plan) or it lacks a step.
rt::StatusOr<std::vector<TimedStep>> timedSteps(const TraceTimes &trace, const FunctionCost &cost);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_TRACETIMES_H

//===- FigureFit.h - a device's figures fitted to measured step times -*- C++ -*-===//
//
// The cost model prices each compute step from a device's figures
// (computeSeconds): GEMM rates and costs per product, the transcendental
// rate, memory bandwidth, launch overhead, and on CPUs the rounding of bf16
// operands. Microbenchmarks (`moe-run --calibrate`) measure them apart
// from any plan; a GPU's generated kernels reach what they reach only in
// the plans that hold them. So figures can also be fitted to the steps of
// plans as they ran (`moec calibrate`, from `moe-run --trace`): the model's
// seconds are linear in the reciprocal rates, the costs per product and the
// launch overhead once each step's longer side (arithmetic or memory, where
// the device overlaps them) is known, so the fit is a non-negative least
// squares, repeated until the sides stop changing.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_FIGUREFIT_H
#define MOEC_COMPILER_COST_FIGUREFIT_H

#include "compiler/cost/Cluster.h"
#include "compiler/cost/StepWork.h"

#include <string>
#include <vector>

namespace moec::cost {

/// One compute step as it ran: its work, its launches and its measured
/// seconds.
struct TimedStep {
  StepWork work;
  int launches = 1;
  double seconds = 0;
};

struct FigureFit {
  /// The figures fitted, as the cluster file names them
  /// ("gemm.bf16", "memory_bandwidth", ...), and those kept as they were:
  /// no step's time depends on them (no bf16 products in the plans, say),
  /// or the fit would make a rate infinite.
  std::vector<std::string> fitted, kept;
  size_t steps = 0;
  /// The median of |predicted - measured| / measured over the steps, with
  /// the figures before and after the fit.
  double medianErrorBefore = 0, medianErrorAfter = 0;
  /// The steps' measured seconds, summed, and the predicted sums.
  double measured = 0, predictedBefore = 0, predictedAfter = 0;
};

/// Fits `cluster.device`'s figures to `steps`, minimising the sum of
/// (predicted - measured)² / measured (large steps weigh more than in a
/// relative fit, small ones more than in an absolute one). Three starts
/// for each step's longer side, the best fit kept: as the given figures
/// make it (they may be another device's), products bound by arithmetic
/// and the rest by memory, and steps with transcendentals bound by
/// arithmetic too. Figures no step depends on keep their exact values; a
/// rate the fit would make infinite is held; a cost per product or launch,
/// or a transcendental rate, that adds under a millionth to every step is
/// 0 (a transcendental rate of 0 is "not counted", as computeSeconds reads
/// it).
FigureFit fitDeviceFigures(const std::vector<TimedStep> &steps, Cluster &cluster);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_FIGUREFIT_H

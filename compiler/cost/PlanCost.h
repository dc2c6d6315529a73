//===- PlanCost.h - the predicted time and memory of a compiled plan -*- C++ -*-===//
//
// The cost model (docs/design/cost-model.md) reads the plan, not the
// description: each step's matrix-product FLOPs and bytes (StepWork), each
// collective's bytes and group (CollectiveTraffic), the arena the memory
// planner laid out. A compute step takes the longer of its products at the
// device's GEMM rate and its bytes at the memory bandwidth, plus a launch
// overhead per kernel; a collective takes its messages in sequence (ring
// or tree, CollectiveTraffic) of latency plus
// its bytes at the bandwidth of the slowest link its group spans. As the
// executor does, collectives run in order on a queue of their own while
// computation goes on; a step waits for the collectives that write what it
// reads (or read what it writes). One run's time is when both are done.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_PLANCOST_H
#define MOEC_COMPILER_COST_PLANCOST_H

#include "compiler/cost/Cluster.h"
#include "compiler/cost/ExpertLoad.h"
#include "compiler/cost/StepWork.h"
#include "runtime/core/Plan.h"
#include "runtime/core/PlanMemory.h"

#include <map>
#include <string>
#include <vector>

namespace moec::cost {

struct StepCost {
  int step = -1;
  std::string op;
  bool collective = false;
  double gemmFlops = 0, bytes = 0; ///< compute steps
  StepWork work;                   ///< compute steps: what the time is of
  int launches = 0;                ///< compute steps: kernels (ops on a CPU)
  double sent = 0;                 ///< collectives: bytes this rank sends
  double start = 0, seconds = 0;   ///< on its timeline (compute or collectives)
};

/// Totals of one kind of op: the time it takes and its share of the work.
struct OpTotals {
  int count = 0;
  double seconds = 0, gemmFlops = 0, bytes = 0, sent = 0;
};

struct FunctionCost {
  std::string function;
  std::vector<StepCost> steps;
  std::map<std::string, OpTotals> byOp;
  double gemmFlops = 0;         ///< per rank
  double bytes = 0;             ///< per rank, compute steps
  double sent = 0;              ///< per rank, collectives
  int launches = 0;             ///< kernels (ops on a CPU) per run
  double computeSeconds = 0;    ///< the compute timeline's busy time
  double collectiveSeconds = 0; ///< the collective queue's busy time
  double seconds = 0;           ///< one run, with the overlap the plan allows
  /// The rows the experts behind an expert exchange compute, over balanced
  /// routing's (ExpertLoad::busiestRank of the plan's ep; 1 without a load
  /// or without expert exchanges).
  double busiestRank = 1;
  /// Collective time the compute timeline waited for.
  double exposedCollectiveSeconds() const { return seconds - computeSeconds; }
};

/// The seconds of one compute step: the longer of its arithmetic (products,
/// then transcendentals) and its memory traffic (their sum for products
/// where the device does one after the other), plus its launches, after
/// rounding its fp32 operands where bf16 products do that first.
double computeSeconds(const StepWork &work, int launches, const Cluster &cluster);

/// The cost of one run of `function` on one rank of `cluster`; the plan's
/// mesh ranks fill nodes in order (rank r on node r / devices_per_node).
/// With `load`, the experts behind an expert exchange compute the busiest
/// rank's rows (the step waits for it); without, balanced routing's.
FunctionCost functionCost(const rt::LoadedPlan &plan, const plan::Function &function,
                          const Cluster &cluster, const ExpertLoad *load = nullptr);

/// What training with `plan` costs: its training step (the optimizer of
/// the description, else forward) and its memory per rank.
struct PlanCost {
  FunctionCost step;
  rt::PlanMemory memory;
  int64_t ranks = 1;
  int64_t tokensPerStep = 0; ///< of the whole mesh
  bool bf16 = false;         ///< the plan's products are bf16
  double tokensPerSecond() const { return step.seconds > 0 ? tokensPerStep / step.seconds : 0; }
  /// The plan's matrix-product FLOPs per second per device over the peak
  /// rate of its precision (recomputed products count: hardware FLOPs).
  double mfu(const Cluster &cluster) const;
};

PlanCost planCost(const rt::LoadedPlan &plan, const Cluster &cluster,
                  const ExpertLoad *load = nullptr);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_PLANCOST_H

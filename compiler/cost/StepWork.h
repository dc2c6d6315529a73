//===- StepWork.h - the arithmetic and memory traffic of one plan step -*- C++ -*-===//
//
// What one step of a compiled plan computes, from its op, its operands'
// shapes and its attributes alone: the FLOPs of its matrix products (which
// run at a device's GEMM rate) and how many products they are (each pays a
// call overhead), its transcendental functions, the bytes it must read and
// write (at its memory bandwidth), and whether its products take bf16
// operands. A fused step does the work of its members and moves only its
// own operands.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_STEPWORK_H
#define MOEC_COMPILER_COST_STEPWORK_H

#include "runtime/core/Plan.h"

#include <map>

namespace moec::cost {

struct StepWork {
  double gemmFlops = 0;       ///< multiply-adds of matrix products, times 2
  double gemmCalls = 0;       ///< the separate products they are (per expert, head)
  double transcendentals = 0; ///< exp, log and sigmoid evaluations
  double bytes = 0;           ///< each distinct operand read and result written once
  bool bf16 = false;          ///< products in bf16 (`moe.precision = "bf16"`)
  /// Elements of fp32 operands (weights, rows stored in fp32) that bf16
  /// products read: each distinct one is rounded to bf16 once per op.
  double bf16Operands = 0;
};

/// The fraction of each tensor's rows that hold data, where a static shape
/// is an upper bound: an expert exchange's receive buffer has room for
/// every row its group could send (`ep·N`), and balanced routing fills `N`.
/// Steps that keep the row count keep the fraction; absent tensors are full.
using RowFill = std::map<int, double>;

/// The bytes of the tensors `ids` names, each once (a tensor read twice
/// moves once).
double distinctBytes(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids);

/// The work of `step`; `fill` is read for its operands and updated for its
/// results. `busiestRank` scales the rows an expert exchange delivers: the
/// load of the rank whose experts receive the most over the mean's
/// (ExpertLoad::busiestRank; 1: balanced routing).
StepWork stepWork(const rt::LoadedPlan &plan, const plan::Step &step, RowFill &fill,
                  double busiestRank = 1);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_STEPWORK_H

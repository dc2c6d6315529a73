//===- CollectiveTraffic.h - what one collective step exchanges -*- C++ -*-===//
//
// A collective step (mesh.*, and the expert exchanges) with its payload per
// rank, the bytes each rank sends and the ranks of its group: an
// all-reduce with the bytes of a ring and the latency of a ring or, from 4
// ranks on, of a tree, whichever is fewer messages (rt::allReduceRounds:
// NCCL chooses by size and topology, the model by the count; the mpi channel gathers
// every rank's values and sums them in rank order, which its calibrated
// figures absorb); an expert exchange as if routing were balanced (it
// moves what routing chose, so the count per step varies).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_COLLECTIVETRAFFIC_H
#define MOEC_COMPILER_COST_COLLECTIVETRAFFIC_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::cost {

struct CollectiveTraffic {
  std::string kind;          ///< "mesh.all_reduce sum", "moe.expert_exchange", ...
  std::vector<int64_t> axes; ///< the mesh axes of its group
  int64_t ranks = 1;         ///< in its group
  uint64_t payload = 0;      ///< bytes each rank contributes
  uint64_t sent = 0;         ///< bytes each rank sends
  int rounds = 0;            ///< messages in sequence (ring or tree steps)
};

/// The traffic of `step`, or nullopt when it is not a collective.
std::optional<CollectiveTraffic> collectiveTraffic(const rt::LoadedPlan &plan,
                                                   const plan::Step &step);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_COLLECTIVETRAFFIC_H

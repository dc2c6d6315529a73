//===- Communication.h - the collectives a function runs per call ---------===//
//
// What a run of a sharded function exchanges between ranks, by kind of
// collective (compiler/cost/CollectiveTraffic.h says how each is counted).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TOOLS_MOE_INSPECT_COMMUNICATION_H
#define MOEC_TOOLS_MOE_INSPECT_COMMUNICATION_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <map>
#include <string>

namespace moec::inspect {

/// The collectives of one kind ("mesh.all_reduce sum", ...) in a function.
struct CollectiveTotals {
  int count = 0;
  uint64_t payload = 0; // bytes each rank contributes
  uint64_t sent = 0;    // bytes each rank sends (ring algorithm)
};

struct Communication {
  int64_t ranks = 1; // of the plan's mesh
  std::map<std::string, CollectiveTotals> byKind;
  CollectiveTotals total;
};

Communication communication(const rt::LoadedPlan &plan, const plan::Function &function);

} // namespace moec::inspect

#endif // MOEC_TOOLS_MOE_INSPECT_COMMUNICATION_H

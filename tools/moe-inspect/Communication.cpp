//===- Communication.cpp - the collectives a function runs per call -------===//
#include "Communication.h"

#include "compiler/cost/CollectiveTraffic.h"

namespace moec::inspect {

Communication communication(const rt::LoadedPlan &plan, const plan::Function &function) {
  Communication result;
  result.ranks = plan.meshRanks();
  if (!function.steps())
    return result;
  for (const plan::Step *step : *function.steps()) {
    std::optional<cost::CollectiveTraffic> traffic = cost::collectiveTraffic(plan, *step);
    if (!traffic)
      continue;
    for (CollectiveTotals *totals : {&result.byKind[traffic->kind], &result.total}) {
      ++totals->count;
      totals->payload += traffic->payload;
      totals->sent += traffic->sent;
    }
  }
  return result;
}

} // namespace moec::inspect

//===- Communication.cpp - the collectives a function runs per call -------===//
#include "Communication.h"

namespace moec::inspect {
namespace {
std::string stringAttr(const plan::Step &step, const char *name) {
  if (step.attrs())
    for (const plan::Attr *attr : *step.attrs())
      if (attr->name()->str() == name && attr->value_as_StringAttr() &&
          attr->value_as_StringAttr()->value())
        return attr->value_as_StringAttr()->value()->str();
  return "";
}
} // namespace

Communication communication(const rt::LoadedPlan &plan, const plan::Function &function) {
  Communication result;
  result.ranks = plan.meshRanks();
  if (!function.steps())
    return result;
  const uint64_t n = static_cast<uint64_t>(result.ranks);
  for (const plan::Step *step : *function.steps()) {
    std::string op = step->op()->str();
    if (op.rfind("mesh.", 0) != 0 || !step->inputs() || step->inputs()->size() != 1)
      continue;
    uint64_t bytes = plan.describe(step->inputs()->Get(0)).bytes();
    std::string kind = op;
    uint64_t sent = 0;
    if (op == "mesh.all_reduce") {
      std::string reduction = stringAttr(*step, "reduction");
      kind += " " + (reduction.empty() ? std::string("sum") : reduction);
      sent = 2 * (n - 1) * bytes / n; // reduce-scatter, then all-gather
    } else if (op == "mesh.all_gather") {
      sent = (n - 1) * bytes; // each rank's part travels to the n - 1 others
    } else if (op == "mesh.all_slice") {
      bytes = 0; // a local slice
    }
    for (CollectiveTotals *totals : {&result.byKind[kind], &result.total}) {
      ++totals->count;
      totals->payload += bytes;
      totals->sent += sent;
    }
  }
  return result;
}

} // namespace moec::inspect

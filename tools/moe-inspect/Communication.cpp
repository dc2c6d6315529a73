//===- Communication.cpp - the collectives a function runs per call -------===//
#include "Communication.h"

#include <algorithm>

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

int64_t intAttr(const plan::Step &step, const char *name, int64_t otherwise) {
  if (step.attrs())
    for (const plan::Attr *attr : *step.attrs())
      if (attr->name()->str() == name && attr->value_as_IntAttr())
        return attr->value_as_IntAttr()->value();
  return otherwise;
}
} // namespace

Communication communication(const rt::LoadedPlan &plan, const plan::Function &function) {
  Communication result;
  result.ranks = plan.meshRanks();
  if (!function.steps())
    return result;
  for (const plan::Step *step : *function.steps()) {
    std::string op = step->op()->str();
    bool exchange = op == "moe.expert_exchange" || op == "moe.expert_return";
    if ((op.rfind("mesh.", 0) != 0 && !exchange) || !step->inputs() || step->inputs()->size() == 0)
      continue;
    uint64_t bytes = plan.describe(step->inputs()->Get(0)).bytes();
    // The group: the ranks along the step's mesh axes.
    uint64_t n = 1;
    const plan::Mesh *mesh = plan.root().mesh();
    if (step->attrs() && mesh && mesh->shape())
      for (const plan::Attr *attr : *step->attrs())
        if (attr->name()->str() == "mesh_axes" && attr->value_as_IntsAttr() &&
            attr->value_as_IntsAttr()->values())
          for (int64_t axis : *attr->value_as_IntsAttr()->values())
            if (axis >= 0 && axis < static_cast<int64_t>(mesh->shape()->size()))
              n *= mesh->shape()->Get(axis);
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
    } else if (op == "mesh.all_to_all") {
      sent = (n - 1) * bytes / n; // every piece but the rank's own
    } else if (exchange) {
      // Rows to (or from) the experts' ranks: as many as routing sends, the
      // rank's dispatched rows (a chunk of them, --overlap-chunks); with
      // balanced experts, all but the rank's own share travel.
      if (op == "moe.expert_return" && step->outputs() && step->outputs()->size() > 0)
        bytes = plan.describe(step->outputs()->Get(0)).bytes();
      bytes /= std::max<int64_t>(intAttr(*step, "chunks", 1), 1);
      sent = (n - 1) * bytes / n;
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

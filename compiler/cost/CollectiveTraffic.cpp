//===- CollectiveTraffic.cpp - what one collective step exchanges ----------===//
#include "compiler/cost/CollectiveTraffic.h"

#include "runtime/core/CollectiveRounds.h"

#include <algorithm>

namespace moec::cost {
namespace {
std::string stringAttr(const plan::Step &step, const char *name) {
  const plan::Attr *attr = rt::findAttr(step, name);
  return attr && attr->value_as_StringAttr() && attr->value_as_StringAttr()->value()
             ? attr->value_as_StringAttr()->value()->str()
             : "";
}

int64_t intAttr(const plan::Step &step, const char *name, int64_t otherwise) {
  const plan::Attr *attr = rt::findAttr(step, name);
  return attr && attr->value_as_IntAttr() ? attr->value_as_IntAttr()->value() : otherwise;
}
} // namespace

std::optional<CollectiveTraffic> collectiveTraffic(const rt::LoadedPlan &plan,
                                                   const plan::Step &step) {
  std::string op = step.op()->str();
  bool exchange = op == "moe.expert_exchange" || op == "moe.expert_return";
  if ((op.rfind("mesh.", 0) != 0 && !exchange) || !step.inputs() || step.inputs()->size() == 0)
    return std::nullopt;
  CollectiveTraffic traffic;
  traffic.kind = op;
  uint64_t bytes = plan.describe(step.inputs()->Get(0)).bytes();
  // The group: the ranks along the step's mesh axes.
  const plan::Mesh *mesh = plan.root().mesh();
  if (const plan::Attr *attr = rt::findAttr(step, "mesh_axes"); attr && mesh && mesh->shape() &&
                                                                attr->value_as_IntsAttr() &&
                                                                attr->value_as_IntsAttr()->values())
    for (int64_t axis : *attr->value_as_IntsAttr()->values())
      if (axis >= 0 && axis < static_cast<int64_t>(mesh->shape()->size())) {
        traffic.axes.push_back(axis);
        traffic.ranks *= mesh->shape()->Get(axis);
      }
  uint64_t n = static_cast<uint64_t>(traffic.ranks);
  uint64_t sent = 0;
  if (op == "mesh.all_reduce") {
    std::string reduction = stringAttr(step, "reduction");
    traffic.kind += " " + (reduction.empty() ? std::string("sum") : reduction);
    sent = 2 * (n - 1) * bytes / n; // reduce-scatter, then all-gather
    traffic.rounds = rt::allReduceRounds(traffic.ranks);
  } else if (op == "mesh.all_gather") {
    sent = (n - 1) * bytes; // each rank's part travels to the n - 1 others
    traffic.rounds = static_cast<int>(n - 1);
  } else if (op == "mesh.all_slice") {
    bytes = 0; // a local slice
  } else if (op == "mesh.all_to_all") {
    sent = (n - 1) * bytes / n; // every piece but the rank's own
    traffic.rounds = static_cast<int>(n - 1);
  } else if (exchange) {
    // Rows to (or from) the experts' ranks: as many as routing sends, the
    // rank's dispatched rows (a chunk of them, --overlap-chunks); with
    // balanced experts, all but the rank's own share travel.
    if (op == "moe.expert_return" && step.outputs() && step.outputs()->size() > 0)
      bytes = plan.describe(step.outputs()->Get(0)).bytes();
    bytes /= std::max<int64_t>(intAttr(step, "chunks", 1), 1);
    sent = (n - 1) * bytes / n;
    traffic.rounds = static_cast<int>(n - 1);
  }
  traffic.payload = bytes;
  traffic.sent = sent;
  return traffic;
}

} // namespace moec::cost

//===- PlanCost.cpp - the predicted time and memory of a compiled plan -----===//
#include "compiler/cost/PlanCost.h"

#include "compiler/cost/CollectiveTraffic.h"
#include "compiler/cost/StepWork.h"

#include <algorithm>
#include <set>

namespace moec::cost {
namespace {

/// Whether the group of rank 0 along `axes` stays inside one node: mesh
/// ranks are row-major over the mesh's axes and fill nodes in order.
bool groupInsideNode(const rt::LoadedPlan &plan, const std::vector<int64_t> &axes,
                     int64_t devicesPerNode) {
  const plan::Mesh *mesh = plan.root().mesh();
  if (!mesh || !mesh->shape())
    return true;
  std::vector<int64_t> shape(mesh->shape()->begin(), mesh->shape()->end());
  // The strides of the axes, and the largest rank of the group.
  int64_t last = 0, stride = 1;
  for (int64_t axis = static_cast<int64_t>(shape.size()) - 1; axis >= 0; --axis) {
    if (std::find(axes.begin(), axes.end(), axis) != axes.end())
      last += (shape[axis] - 1) * stride;
    stride *= shape[axis];
  }
  return last / devicesPerNode == 0;
}

/// The size of the mesh's `ep` axis (1 without one).
int64_t epRanks(const rt::LoadedPlan &plan) {
  const plan::Mesh *mesh = plan.root().mesh();
  if (!mesh || !mesh->shape() || !mesh->axes())
    return 1;
  for (unsigned axis = 0; axis < mesh->axes()->size() && axis < mesh->shape()->size(); ++axis)
    if (mesh->axes()->Get(axis)->str() == "ep")
      return mesh->shape()->Get(axis);
  return 1;
}

double collectiveSeconds(const CollectiveTraffic &traffic, const LinkFigures &link) {
  if (traffic.ranks <= 1 || traffic.sent == 0)
    return 0;
  return traffic.rounds * link.latency + double(traffic.sent) / link.bandwidth;
}

/// Kernel launches of a step: its generated kernel's, else one op.
int launchesOf(const rt::LoadedPlan &plan, const plan::Step &step) {
  const auto *kernels = plan.root().kernels();
  if (step.kernel() >= 0 && kernels && step.kernel() < static_cast<int>(kernels->size())) {
    const plan::Kernel &kernel = *kernels->Get(step.kernel());
    return kernel.launches() ? static_cast<int>(kernel.launches()->size()) : 1;
  }
  return 1;
}

/// When the collectives in flight that touch `ids` are done: those that
/// write a tensor the step reads, or read one it writes.
double readyTime(const flatbuffers::Vector<int32_t> *ids, const std::map<int, double> &busyUntil) {
  double ready = 0;
  if (ids)
    for (int id : *ids)
      if (auto it = busyUntil.find(id); it != busyUntil.end())
        ready = std::max(ready, it->second);
  return ready;
}

void markBusy(const flatbuffers::Vector<int32_t> *ids, double until,
              std::map<int, double> &busyUntil) {
  if (ids)
    for (int id : *ids)
      busyUntil[id] = std::max(busyUntil[id], until);
}
} // namespace

double computeSeconds(const StepWork &work, int launches, const Cluster &cluster) {
  double arithmetic = 0;
  if (work.gemmFlops > 0)
    arithmetic +=
        work.gemmFlops / cluster.gemmRate(work.bf16) + work.gemmCalls * cluster.gemmCall(work.bf16);
  if (cluster.device.transcendentalRate > 0)
    arithmetic += work.transcendentals / cluster.device.transcendentalRate;
  double memory = work.bytes / cluster.device.memoryBandwidth;
  // Rounding fp32 operands to bf16 in a pass of their own comes first.
  double rounding = 0;
  if (cluster.device.bf16Conversion > 0)
    rounding = work.bf16Operands * 6 / cluster.device.bf16Conversion;
  double busy = cluster.device.serialMemory && work.gemmFlops > 0 ? arithmetic + memory
                                                                  : std::max(arithmetic, memory);
  return rounding + busy + launches * cluster.device.launchOverhead;
}

FunctionCost functionCost(const rt::LoadedPlan &plan, const plan::Function &function,
                          const Cluster &cluster, const ExpertLoad *load) {
  FunctionCost cost;
  double busiestRank = load ? load->busiestRank(epRanks(plan)) : 1.0;
  cost.function = function.name()->str();
  if (!function.steps())
    return cost;
  RowFill fill;
  // The collective queue: when it is free, and until when each tensor it
  // reads or writes is in use.
  double computeClock = 0, queueClock = 0;
  std::map<int, double> written, read;
  for (unsigned i = 0; i < function.steps()->size(); ++i) {
    const plan::Step &step = *function.steps()->Get(i);
    if (step.view())
      continue;
    StepCost s;
    s.step = static_cast<int>(i);
    s.op = step.op()->str();
    if (std::optional<CollectiveTraffic> traffic = collectiveTraffic(plan, step)) {
      // Queued when the compute timeline reaches it, run after the earlier
      // ones. Its work is none, but an expert exchange sets the row fill of
      // what it receives.
      stepWork(plan, step, fill, busiestRank);
      if (s.op == "moe.expert_exchange")
        cost.busiestRank = busiestRank;
      bool inside = groupInsideNode(plan, traffic->axes, cluster.devicesPerNode);
      s.collective = true;
      s.sent = double(traffic->sent);
      s.seconds = collectiveSeconds(*traffic, inside ? cluster.intraNode : cluster.interNode);
      s.start = std::max({computeClock, queueClock, readyTime(step.inputs(), written)});
      queueClock = s.start + s.seconds;
      markBusy(step.outputs(), queueClock, written);
      markBusy(step.inputs(), queueClock, read);
      cost.collectiveSeconds += s.seconds;
      cost.sent += s.sent;
    } else {
      StepWork work = stepWork(plan, step, fill, busiestRank);
      int launches = launchesOf(plan, step);
      s.work = work;
      s.launches = launches;
      s.gemmFlops = work.gemmFlops;
      s.bytes = work.bytes;
      s.seconds = computeSeconds(work, launches, cluster);
      s.start = std::max({computeClock, readyTime(step.inputs(), written),
                          readyTime(step.outputs(), read), readyTime(step.outputs(), written)});
      computeClock = s.start + s.seconds;
      cost.computeSeconds += s.seconds;
      cost.gemmFlops += s.gemmFlops;
      cost.bytes += s.bytes;
      cost.launches += launches;
    }
    OpTotals &totals = cost.byOp[s.op];
    ++totals.count;
    totals.seconds += s.seconds;
    totals.gemmFlops += s.gemmFlops;
    totals.bytes += s.bytes;
    totals.sent += s.sent;
    cost.steps.push_back(std::move(s));
  }
  cost.seconds = std::max(computeClock, queueClock);
  return cost;
}

double PlanCost::mfu(const Cluster &cluster) const {
  double peak = cluster.peak(bf16);
  return step.seconds > 0 && peak > 0 ? step.gemmFlops / step.seconds / peak : 0;
}

PlanCost planCost(const rt::LoadedPlan &plan, const Cluster &cluster, const ExpertLoad *load) {
  PlanCost cost;
  const plan::Plan &root = plan.root();
  std::string optimizer =
      root.training() && root.training()->optimizer() && root.training()->optimizer()->kind()
          ? root.training()->optimizer()->kind()->str()
          : "adamw";
  const plan::Function *function = plan.function("train_step_" + optimizer);
  if (!function)
    function = plan.function("forward");
  cost.ranks = plan.meshRanks();
  if (auto shape = plan.tokenShape(); shape.isOk())
    cost.tokensPerStep = shape->first * shape->second * cost.ranks;
  cost.bf16 = root.precision() && root.precision()->str() == "bf16";
  if (function) {
    cost.step = functionCost(plan, *function, cluster, load);
    cost.memory = rt::planMemory(plan, {function->name()->str()});
  }
  return cost;
}

} // namespace moec::cost

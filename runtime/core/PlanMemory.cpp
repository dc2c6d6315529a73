// PlanMemory.cpp - what running a plan's functions holds in memory.
#include "runtime/core/PlanMemory.h"

#include <set>

namespace moec::rt {

std::string PlanMemory::describe() const {
  return humanBytes(total()) + " (parameters " + humanBytes(parameters) + ", optimizer state " +
         humanBytes(state) + ", arena " + humanBytes(arena) + ")";
}

PlanMemory planMemory(const LoadedPlan &plan, const std::vector<std::string> &functions) {
  const plan::Plan &root = plan.root();
  PlanMemory memory;
  std::set<std::string> seen;
  for (const std::string &name : functions) {
    const plan::Function *f = plan.function(name);
    if (!f)
      continue;
    if (name == functions.front() && f->buffer() >= 0 && root.buffers() &&
        f->buffer() < static_cast<int>(root.buffers()->size()))
      memory.arena += static_cast<double>(root.buffers()->Get(f->buffer())->size());
    if (!f->inputs())
      continue;
    for (int id : *f->inputs()) {
      const plan::Tensor &t = plan.tensor(id);
      bool isState = t.role() == plan::TensorRole::state;
      if ((t.role() == plan::TensorRole::parameter || isState) && t.name() &&
          seen.insert(t.name()->str()).second)
        (isState ? memory.state : memory.parameters) +=
            static_cast<double>(plan.describe(id).bytes());
    }
  }
  return memory;
}

PlanMemory largestPlanMemory(const LoadedPlan &plan) {
  PlanMemory largest;
  if (plan.root().functions())
    for (const plan::Function *f : *plan.root().functions())
      if (f->name()) {
        PlanMemory memory = planMemory(plan, {f->name()->str()});
        if (memory.total() > largest.total())
          largest = memory;
      }
  return largest;
}

} // namespace moec::rt

//===- ArenaPeak.cpp - what fills a function's arena at its fullest -------===//
#include "ArenaPeak.h"

#include <algorithm>
#include <map>

namespace moec::inspect {

ArenaPeak findArenaPeak(const rt::LoadedPlan &plan, const plan::Function &function) {
  ArenaPeak peak;
  const plan::Plan &root = plan.root();
  if (function.buffer() < 0 || !function.steps())
    return peak;
  peak.arenaBytes = root.buffers()->Get(function.buffer())->size();
  const auto &steps = *function.steps();
  const int numSteps = steps.size();

  // The allocation each tensor's bytes belong to: a view's output is its
  // input's; tensors outside the arena (parameters, inputs, state) are -1.
  std::map<int, int> owner;
  std::map<int, LiveTensor> allocations;
  for (int index = 0; index < numSteps; ++index) {
    const plan::Step &step = *steps.Get(index);
    // The allocation of an input of `step` in the arena at `offset`, or -1.
    auto inputAt = [&](const plan::Step &step, uint64_t offset) {
      if (step.inputs())
        for (int id : *step.inputs())
          if (auto it = owner.find(id);
              it != owner.end() && plan.tensor(it->second).offset() == offset)
            return it->second;
      return -1;
    };
    auto use = [&](int id) {
      auto it = owner.find(id);
      if (it != owner.end())
        allocations[it->second].lastUse = index;
    };
    if (step.inputs())
      for (int id : *step.inputs())
        use(id);
    if (!step.outputs())
      continue;
    for (int id : *step.outputs()) {
      if (step.view() && step.inputs() && step.inputs()->size() > 0) {
        auto source = owner.find(step.inputs()->Get(0));
        if (source != owner.end())
          owner[id] = source->second;
        continue;
      }
      const plan::Tensor &tensor = plan.tensor(id);
      if (tensor.role() != plan::TensorRole::intermediate &&
          tensor.role() != plan::TensorRole::output)
        continue;
      if (tensor.buffer() != function.buffer())
        continue;
      // Written in place over an input (the same bytes): that input's
      // allocation lives on.
      if (int inPlace = inputAt(step, tensor.offset()); inPlace >= 0) {
        owner[id] = inPlace;
        allocations[inPlace].lastUse = index;
        continue;
      }
      LiveTensor live;
      live.tensor = id;
      live.bytes = plan.describe(id).bytes();
      live.defined = index;
      live.lastUse = index;
      live.producer = step.op()->str();
      owner[id] = id;
      allocations[id] = live;
    }
  }
  if (function.outputs())
    for (int id : *function.outputs())
      if (auto it = owner.find(id); it != owner.end())
        allocations[it->second].lastUse = numSteps - 1;

  // Bytes live at each step: +bytes where an allocation starts, -bytes after
  // its last use.
  std::vector<int64_t> delta(numSteps + 1, 0);
  for (auto &[id, live] : allocations) {
    delta[live.defined] += live.bytes;
    delta[live.lastUse + 1] -= live.bytes;
  }
  int64_t current = 0;
  for (int index = 0; index < numSteps; ++index) {
    current += delta[index];
    if (current > static_cast<int64_t>(peak.liveBytes)) {
      peak.liveBytes = current;
      peak.step = index;
    }
  }
  if (peak.step < 0)
    return peak;
  peak.op = steps.Get(peak.step)->op()->str();
  for (auto &[id, live] : allocations)
    if (live.defined <= peak.step && peak.step <= live.lastUse)
      peak.live.push_back(live);
  std::stable_sort(peak.live.begin(), peak.live.end(),
                   [](const LiveTensor &a, const LiveTensor &b) { return a.bytes > b.bytes; });
  return peak;
}

} // namespace moec::inspect

//===- KernelTraffic.cpp - the kernels a function launches, and their bytes ===//
#include "KernelTraffic.h"

#include <set>

namespace moec::inspect {
namespace {
uint64_t bytesOf(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids) {
  uint64_t bytes = 0;
  if (!ids)
    return 0;
  std::set<int> seen; // a tensor read twice moves once
  for (int id : *ids)
    if (seen.insert(id).second)
      bytes += plan.describe(id).bytes();
  return bytes;
}
} // namespace

KernelTraffic kernelTraffic(const rt::LoadedPlan &plan, const plan::Function &function) {
  KernelTraffic traffic;
  if (!function.steps())
    return traffic;
  const auto *kernels = plan.root().kernels();
  for (unsigned i = 0; i < function.steps()->size(); ++i) {
    const plan::Step &step = *function.steps()->Get(i);
    if (step.view())
      continue;
    KernelUse use;
    use.step = static_cast<int>(i);
    use.op = step.op()->str();
    if (step.kernel() >= 0 && kernels) {
      const plan::Kernel &kernel = *kernels->Get(step.kernel());
      use.kernel = kernel.name()->str();
      use.launches = kernel.launches() ? kernel.launches()->size() : 0;
    }
    use.bytesRead = bytesOf(plan, step.inputs());
    use.bytesWritten = bytesOf(plan, step.outputs());
    traffic.launches += use.launches;
    traffic.bytesRead += use.bytesRead;
    traffic.bytesWritten += use.bytesWritten;
    traffic.steps.push_back(std::move(use));
  }
  return traffic;
}

} // namespace moec::inspect

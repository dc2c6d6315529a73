//===- KernelTraffic.cpp - the kernels a function launches, and their bytes ===//
#include "KernelTraffic.h"

#include "compiler/cost/StepWork.h"

namespace moec::inspect {
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
    use.bytesRead = static_cast<uint64_t>(cost::distinctBytes(plan, step.inputs()));
    use.bytesWritten = static_cast<uint64_t>(cost::distinctBytes(plan, step.outputs()));
    traffic.launches += use.launches;
    traffic.bytesRead += use.bytesRead;
    traffic.bytesWritten += use.bytesWritten;
    traffic.steps.push_back(std::move(use));
  }
  return traffic;
}

} // namespace moec::inspect

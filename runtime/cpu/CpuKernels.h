// CpuKernels.h - registration of the CPU kernels, one function per op family.
#ifndef MOEC_RUNTIME_CPU_CPUKERNELS_H
#define MOEC_RUNTIME_CPU_CPUKERNELS_H

#include "runtime/core/Kernel.h"

namespace moec::rt::cpu {

void registerDenseKernels(KernelRegistry &registry);
void registerRoutingKernels(KernelRegistry &registry);
void registerDispatchKernels(KernelRegistry &registry);
void registerExpertKernels(KernelRegistry &registry);
void registerLossKernels(KernelRegistry &registry);
void registerShapeKernels(KernelRegistry &registry);
void registerDenseGradientKernels(KernelRegistry &registry);
void registerRouterGradientKernels(KernelRegistry &registry);
void registerExpertGradientKernels(KernelRegistry &registry);
void registerLossGradientKernels(KernelRegistry &registry);
void registerOptimizerKernels(KernelRegistry &registry);
void registerSplitExpertKernels(KernelRegistry &registry);

/// Every CPU kernel.
inline void registerCpuKernels(KernelRegistry &registry) {
  registerDenseKernels(registry);
  registerRoutingKernels(registry);
  registerDispatchKernels(registry);
  registerExpertKernels(registry);
  registerLossKernels(registry);
  registerShapeKernels(registry);
  registerDenseGradientKernels(registry);
  registerRouterGradientKernels(registry);
  registerExpertGradientKernels(registry);
  registerLossGradientKernels(registry);
  registerOptimizerKernels(registry);
  registerSplitExpertKernels(registry);
}

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUKERNELS_H

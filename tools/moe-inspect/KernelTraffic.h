//===- KernelTraffic.h - the kernels a function launches, and their bytes -===//
//
// What a run of a function costs in launches and memory traffic: each step
// that runs generated code, its kernel's launches, and the bytes of the
// tensors it reads and writes (the least it must move; its workspace is
// not counted). Fusion shows here: a group is one step, its inner values
// never in memory.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TOOLS_MOE_INSPECT_KERNELTRAFFIC_H
#define MOEC_TOOLS_MOE_INSPECT_KERNELTRAFFIC_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::inspect {

/// One step of a function that runs code (views run none).
struct KernelUse {
  int step = -1;
  std::string op;     // the step's op
  std::string kernel; // the generated module, or empty for an op kernel
  int launches = 0;   // entries and library GEMMs it launches (0: op kernel)
  uint64_t bytesRead = 0, bytesWritten = 0;
};

struct KernelTraffic {
  std::vector<KernelUse> steps;
  int launches = 0; // per run of the function, on a device that runs generated code
  uint64_t bytesRead = 0, bytesWritten = 0;
};

KernelTraffic kernelTraffic(const rt::LoadedPlan &plan, const plan::Function &function);

} // namespace moec::inspect

#endif // MOEC_TOOLS_MOE_INSPECT_KERNELTRAFFIC_H

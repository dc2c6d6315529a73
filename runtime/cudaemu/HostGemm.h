// HostGemm.h - cuda-emu's stand-in for the library GEMMs of a plan.
#ifndef MOEC_RUNTIME_CUDAEMU_HOSTGEMM_H
#define MOEC_RUNTIME_CUDAEMU_HOSTGEMM_H

#include "runtime/core/Bf16.h"
#include "runtime/core/LibraryGemm.h"

namespace moec::rt::cudaemu {

using moec::rt::roundToBf16;

/// Runs `gemm` on the host over the step's arguments (cuLaunchKernel's
/// convention: arguments[i] points at the i-th pointer): each output summed
/// in k order in fp32, operands rounded to bf16 first when gemm.bf16.
void runHostGemm(const LibraryGemm &gemm, void **arguments);

} // namespace moec::rt::cudaemu

#endif // MOEC_RUNTIME_CUDAEMU_HOSTGEMM_H

//===- CudaKernel.h - one op's generated CUDA module and its launches -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_CUDAKERNEL_H
#define MOEC_COMPILER_CODEGEN_CUDAKERNEL_H

#include "runtime/core/LibraryGemm.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::codegen {

/// A GEMM that a library runs (cuBLASLt on a GPU) instead of a kernel of
/// the module; the plan's and the runtime's description of it.
using LibraryGemm = moec::rt::LibraryGemm;

/// One kernel launch of a step: an entry point of the module and its grid,
/// or a library GEMM.
struct KernelLaunch {
  std::string entry; // extern "C" __global__ function of the module
  std::array<unsigned, 3> grid = {1, 1, 1};
  std::array<unsigned, 3> block = {1, 1, 1};
  std::optional<LibraryGemm> gemm; // when set, no function of the module runs
};

/// The code of one op instance (shapes are static, so the source is
/// specialised to them): a module of one or more entry points that the step
/// launches in order, with an optional device workspace shared by them
/// (passed as a last `char *workspace` argument). The source is one
/// self-contained translation unit: NVRTC compiles it for the GPU; with
/// MOEC_CUDA_EMU defined, the host compiler compiles it, with launchers, for
/// the cuda-emu device.
struct CudaKernel {
  std::string name;   // the module: `<stem>_<hash of the source>`
  std::string source; // CUDA C++
  std::vector<KernelLaunch> launches;
  uint64_t workspaceBytes = 0;
};

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_CUDAKERNEL_H

//===- CudaKernel.h - one generated CUDA kernel and how to launch it -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_CUDAKERNEL_H
#define MOEC_COMPILER_CODEGEN_CUDAKERNEL_H

#include <array>
#include <string>

namespace moec::codegen {

/// The kernel of one op instance (shapes are static, so the source is
/// specialised to them). The source is one self-contained translation unit:
/// NVRTC compiles it for the GPU; with MOEC_CUDA_EMU defined, the host
/// compiler compiles it, with a launcher, for the cuda-emu device.
struct CudaKernel {
  std::string name;   // extern "C" entry point; unique per source
  std::string source; // CUDA C++
  std::array<unsigned, 3> grid = {1, 1, 1};
  std::array<unsigned, 3> block = {1, 1, 1};
  unsigned sharedBytes = 0;
};

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_CUDAKERNEL_H

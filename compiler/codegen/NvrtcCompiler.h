//===- NvrtcCompiler.h - CUDA C++ to PTX with NVRTC, PTX to SASS with ptxas -===//
//
// Neither needs a GPU or a driver. moec links NVRTC when the CUDA toolkit is
// found at build time; otherwise every call reports that it is unavailable.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_CODEGEN_NVRTCCOMPILER_H
#define MOEC_COMPILER_CODEGEN_NVRTCCOMPILER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::codegen {

/// True when moec was built with NVRTC.
bool isNvrtcAvailable();

/// Compiles one CUDA C++ translation unit to PTX for `arch` (for example
/// "compute_90"). The error carries NVRTC's log.
llvm::Expected<std::string> compileCudaToPtx(llvm::StringRef source,
                                             llvm::StringRef name,
                                             llvm::StringRef arch);

/// The ptxas found at build time (or on PATH); empty when there is none.
std::string findPtxas();

/// Assembles `ptx` for `gpuArch` (for example "sm_90") with ptxas, into
/// `cubin` when given; the error carries ptxas's output.
llvm::Error assembleWithPtxas(llvm::StringRef ptx, llvm::StringRef gpuArch,
                              std::vector<uint8_t> *cubin = nullptr);

/// NVRTC's version ("13.0"), or "none"; part of the kernel cache's key.
std::string nvrtcVersion();

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_NVRTCCOMPILER_H

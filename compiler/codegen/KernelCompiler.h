//===- KernelCompiler.h - generated kernels to PTX and cubin, cached -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_KERNELCOMPILER_H
#define MOEC_COMPILER_CODEGEN_KERNELCOMPILER_H

#include "compiler/codegen/CudaKernel.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::codegen {

/// One kernel as the plan stores it.
struct CompiledKernel {
  std::string ptx;            // for compute_XX: the driver JITs it for any newer GPU
  std::vector<uint8_t> cubin; // for sm_XX; empty without ptxas
};

/// Compiles kernels with NVRTC (PTX) and ptxas (cubin), several at once, and
/// keeps the results in a cache directory keyed by the source, the
/// architecture and NVRTC's version, so that compiling the same model again
/// costs no NVRTC call.
class KernelCompiler {
public:
  /// `gpuArch` like "sm_90"; `cacheDir` empty: no cache.
  KernelCompiler(std::string gpuArch, std::string cacheDir)
      : gpuArch_(std::move(gpuArch)), cacheDir_(std::move(cacheDir)) {}

  /// The default cache: $MOEC_CACHE_DIR, else $XDG_CACHE_HOME/moec/kernels,
  /// else ~/.cache/moec/kernels; empty when none can be named.
  static std::string defaultCacheDir();

  /// One result per kernel, in order. Errors name the kernel and carry
  /// NVRTC's or ptxas's log.
  llvm::Expected<std::vector<CompiledKernel>> compile(llvm::ArrayRef<CudaKernel> kernels);

  unsigned cacheHits() const { return hits_; }

private:
  llvm::Expected<CompiledKernel> compileOne(const CudaKernel &kernel);
  std::string cacheKey(const CudaKernel &kernel) const;

  std::string gpuArch_;
  std::string cacheDir_;
  unsigned hits_ = 0;
};

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_KERNELCOMPILER_H

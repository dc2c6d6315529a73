//===- TargetBackend.h - what each compiler target adds to a plan -*- C++ -*-===//
//
// The pipeline up to memory planning is target-neutral; a target then
// generates the device code of the planned functions (IREE's TargetBackend
// is the model). `cpu` adds nothing: the runtime's CPU kernels run the ops.
// `cuda` lowers every op with a CudaKernelOpInterface to CUDA C++ and
// compiles it with NVRTC.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_TARGET_TARGETBACKEND_H
#define MOEC_COMPILER_TARGET_TARGETBACKEND_H

#include "compiler/codegen/CudaKernel.h"
#include "compiler/codegen/KernelCompiler.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace moec::target {

/// The device code of a module, as the plan stores it.
struct TargetArtifacts {
  std::string target; // "cpu", "cuda"
  std::string arch;   // "sm_90" for cuda
  std::vector<codegen::CudaKernel> kernels;       // one per distinct source
  std::vector<codegen::CompiledKernel> binaries;  // parallel to kernels
  /// The kernel (index in `kernels`) of each op that runs generated code.
  llvm::DenseMap<mlir::Operation *, int> kernelOf;
};

class TargetBackend {
public:
  virtual ~TargetBackend() = default;
  virtual llvm::StringRef name() const = 0;
  /// Generates (and compiles) the code of every planned function of
  /// `module`. Diagnostics go to the ops that fail.
  virtual mlir::FailureOr<TargetArtifacts> generate(mlir::ModuleOp module) = 0;
};

std::unique_ptr<TargetBackend> createCpuTarget();

struct CudaTargetOptions {
  std::string gpuArch = "sm_90";
  std::string cacheDir; // empty: no kernel cache
  /// Generate sources only (for --emit=cuda): no NVRTC.
  bool sourcesOnly = false;
  /// Dense GEMMs (linear layers, router logits, their gradients) as
  /// library calls (cuBLASLt at run time) instead of generated tiles.
  bool libraryGemms = false;
  /// bf16 products on the staged tile only (moec --bf16-tile=staged): fp32
  /// operands rounded in registers, no bf16 copies, no cp.async pipeline.
  bool stagedBf16Tile = false;
  /// Attention's probabilities (S x S per batch and head) go through the
  /// workspace in chunks of heads of at most this many bytes each.
  uint64_t attentionChunkBytes = uint64_t(1) << 30;
};
std::unique_ptr<TargetBackend> createCudaTarget(CudaTargetOptions options);

/// The GPU architectures --gpu-arch accepts.
bool isSupportedGpuArch(llvm::StringRef arch);

} // namespace moec::target

#endif // MOEC_COMPILER_TARGET_TARGETBACKEND_H

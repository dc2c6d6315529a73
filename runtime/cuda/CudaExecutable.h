// CudaExecutable.h - a plan's generated kernels loaded as CUDA modules.
#ifndef MOEC_RUNTIME_CUDA_CUDAEXECUTABLE_H
#define MOEC_RUNTIME_CUDA_CUDAEXECUTABLE_H

#include "runtime/cuda/CublasLt.h"
#include "runtime/cuda/CudaContext.h"
#include "runtime/hal/Executable.h"
#include "runtime/schema/plan_generated.h"

#include <map>
#include <memory>
#include <vector>

namespace moec::rt::cuda {

class CudaExecutable final : public hal::Executable {
public:
  /// Loads each kernel's cubin when it was built for `arch` (the GPU's),
  /// else (or when the cubin does not load) its PTX, which the driver
  /// compiles for the GPU (it must be of an architecture the GPU has: the
  /// same or older, and of a PTX version the driver knows). Library GEMMs
  /// load cuBLASLt and are planned here, once.
  static StatusOr<std::unique_ptr<CudaExecutable>>
  load(std::shared_ptr<CudaContext> context, const std::string &arch, int computeCapability,
       const std::vector<const plan::Kernel *> &kernels);
  ~CudaExecutable() override;

  bool hasKernel(const std::string &name) const override {
    return functions_.count(name) > 0 || gemms_.count(name) > 0;
  }
  Status launch(hal::Stream &stream, const std::string &kernel, const hal::LaunchConfig &config,
                void **arguments) override;

private:
  CudaExecutable() = default;
  /// Plans library GEMM `entry`, loading `library` (and the workspace)
  /// the first time.
  Status planGemm(const std::string &entry, const plan::GemmCall &call,
                  std::shared_ptr<CublasLt> &library);
  std::shared_ptr<CudaContext> context_;
  std::vector<CUmodule> modules_;
  std::map<std::string, CUfunction> functions_;
  // Library GEMMs (moec --gemm=cublaslt) and the workspace they share.
  std::map<std::string, std::unique_ptr<CublasLtGemm>> gemms_;
  CUdeviceptr gemmWorkspace_ = 0;
  static constexpr size_t kGemmWorkspaceBytes = 32u << 20;
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUDAEXECUTABLE_H

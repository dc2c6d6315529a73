// CudaExecutable.cpp - loading plan kernels and launching them.
#include "runtime/cuda/CudaExecutable.h"
#include "runtime/cuda/CudaStream.h"

#include <cstdlib>

namespace moec::rt::cuda {

StatusOr<std::unique_ptr<CudaExecutable>>
CudaExecutable::load(std::shared_ptr<CudaDriver> driver, const std::string &arch,
                     int computeCapability, const std::vector<const plan::Kernel *> &kernels) {
  std::unique_ptr<CudaExecutable> executable(new CudaExecutable());
  executable->driver_ = driver;
  const CudaDriverSymbols &api = driver->api();
  for (const plan::Kernel *kernel : kernels) {
    std::string name = kernel->name()->str();
    std::string kernelArch = kernel->arch() ? kernel->arch()->str() : "";
    bool cubin = kernelArch == arch && kernel->cubin() && kernel->cubin()->size() > 0;
    int kernelCapability = kernelArch.size() == 5 ? std::atoi(kernelArch.c_str() + 3) : 0;
    if (!cubin && kernelCapability > computeCapability)
      return Status::error("kernel '" + name + "' was compiled for " + kernelArch +
                           ", newer than this GPU (" + arch +
                           "): compile the plan with moec --gpu-arch=" + arch);
    if (!cubin && (!kernel->ptx() || kernel->ptx()->size() == 0))
      return Status::error("kernel '" + name + "' has neither a cubin for " + arch +
                           " nor PTX");
    CUmodule module = nullptr;
    const void *image = cubin ? static_cast<const void *>(kernel->cubin()->data())
                              : static_cast<const void *>(kernel->ptx()->c_str());
    if (Status s = driver->check(api.cuModuleLoadData(&module, image),
                                 cubin ? "cuModuleLoadData (cubin)" : "cuModuleLoadData (PTX)");
        !s)
      return Status::error("kernel '" + name + "': " + s.message());
    executable->modules_.push_back(module);
    if (!kernel->launches())
      continue;
    for (const plan::Launch *launch : *kernel->launches()) {
      CUfunction function = nullptr;
      std::string entry = launch->entry()->str();
      if (Status s = driver->check(api.cuModuleGetFunction(&function, module, entry.c_str()),
                                   "cuModuleGetFunction");
          !s)
        return Status::error("kernel '" + name + "', entry " + entry + ": " + s.message());
      executable->functions_[entry] = function;
    }
  }
  return executable;
}

CudaExecutable::~CudaExecutable() {
  for (CUmodule module : modules_)
    driver_->api().cuModuleUnload(module);
}

Status CudaExecutable::launch(hal::Stream &stream, const std::string &kernel,
                              const hal::LaunchConfig &config, void **arguments) {
  auto function = functions_.find(kernel);
  if (function == functions_.end())
    return Status::error("no kernel '" + kernel + "' in the loaded modules");
  auto *cudaStream = dynamic_cast<CudaStream *>(&stream);
  if (!cudaStream)
    return Status::error("CUDA kernels run on CUDA streams only");
  return driver_->check(driver_->api().cuLaunchKernel(
                            function->second, config.grid[0], config.grid[1], config.grid[2],
                            config.block[0], config.block[1], config.block[2],
                            config.sharedBytes, cudaStream->handle(), arguments, nullptr),
                        "cuLaunchKernel");
}

} // namespace moec::rt::cuda

// CudaExecutable.cpp - loading plan kernels and launching them.
#include "runtime/cuda/CudaExecutable.h"
#include "runtime/cuda/CudaStream.h"

#include <cstdlib>
#include <cstring>

namespace moec::rt::cuda {

namespace {
/// The number in "sm_90", "sm_90a", "sm_100"; 0 when there is none.
int capabilityOf(const std::string &arch) {
  if (arch.compare(0, 3, "sm_") != 0)
    return 0;
  return std::atoi(arch.c_str() + 3);
}
} // namespace

StatusOr<std::unique_ptr<CudaExecutable>>
CudaExecutable::load(std::shared_ptr<CudaContext> context, const std::string &arch,
                     int computeCapability, const std::vector<const plan::Kernel *> &kernels) {
  std::unique_ptr<CudaExecutable> executable(new CudaExecutable());
  executable->context_ = context;
  std::shared_ptr<CublasLt> library; // loaded at the first library GEMM
  const CudaDriverSymbols &api = context->api();
  if (Status s = context->makeCurrent(); !s)
    return s;
  for (const plan::Kernel *kernel : kernels) {
    std::string name = kernel->name()->str();
    std::string kernelArch = kernel->arch() ? kernel->arch()->str() : "";
    bool hasCubin = kernelArch == arch && kernel->cubin() && kernel->cubin()->size() > 0;
    bool hasPtx = kernel->ptx() && kernel->ptx()->size() > 0;
    CUmodule module = nullptr;
    std::string cubinError;
    if (hasCubin) {
      // The driver reads the cubin as ELF: give it an 8-byte aligned copy
      // (FlatBuffers aligns byte vectors to 4).
      std::vector<uint64_t> image((kernel->cubin()->size() + 7) / 8);
      std::memcpy(image.data(), kernel->cubin()->data(), kernel->cubin()->size());
      Status s = context->check(api.cuModuleLoadData(&module, image.data()),
                                "cuModuleLoadData (cubin)");
      if (!s)
        cubinError = s.message() + "; ";
    }
    if (!module) {
      if (!hasPtx)
        return Status::error("kernel '" + name + "': " + cubinError + "no cubin for " + arch +
                             " and no PTX");
      if (capabilityOf(kernelArch) > computeCapability)
        return Status::error("kernel '" + name + "' was compiled for " + kernelArch +
                             ", newer than this GPU (" + arch +
                             "): compile the plan with moec --gpu-arch=" + arch);
      if (Status s = context->check(api.cuModuleLoadData(&module, kernel->ptx()->c_str()),
                                    "cuModuleLoadData (PTX)");
          !s) {
        int version = 0;
        api.cuDriverGetVersion(&version);
        return Status::error("kernel '" + name + "': " + cubinError + s.message() +
                             " (the driver is CUDA " + std::to_string(version / 1000) + "." +
                             std::to_string(version % 1000 / 10) +
                             "; PTX from a newer NVRTC needs a newer driver, or a plan "
                             "compiled with --gpu-arch=" + arch + " for its cubin)");
      }
    }
    executable->modules_.push_back(module);
    if (!kernel->launches())
      continue;
    for (const plan::Launch *launch : *kernel->launches()) {
      CUfunction function = nullptr;
      std::string entry = launch->entry()->str();
      if (const plan::GemmCall *call = launch->gemm()) {
        if (Status s = executable->planGemm(entry, *call, library); !s)
          return s;
        continue;
      }
      if (Status s = context->check(api.cuModuleGetFunction(&function, module, entry.c_str()),
                                    "cuModuleGetFunction");
          !s)
        return Status::error("kernel '" + name + "', entry " + entry + ": " + s.message());
      executable->functions_[entry] = function;
    }
  }
  return executable;
}

Status CudaExecutable::planGemm(const std::string &entry, const plan::GemmCall &call,
                                std::shared_ptr<CublasLt> &library) {
  auto gemm = LibraryGemm::fromPlan(call, entry);
  if (!gemm)
    return gemm.status();
  if (!library) {
    auto loaded = CublasLt::load();
    if (!loaded)
      return loaded.status();
    library = std::move(*loaded);
    if (Status s = context_->check(context_->api().cuMemAlloc_v2(&gemmWorkspace_,
                                                                 kGemmWorkspaceBytes),
                                   "cuMemAlloc (cuBLASLt workspace)");
        !s)
      return s;
  }
  auto planned = CublasLtGemm::plan(library, *gemm, kGemmWorkspaceBytes);
  if (!planned)
    return Status::error("library GEMM " + entry + ": " + planned.status().message());
  gemms_[entry] = std::move(*planned);
  return Status::ok();
}

CudaExecutable::~CudaExecutable() {
  gemms_.clear();
  if (gemmWorkspace_)
    context_->api().cuMemFree_v2(gemmWorkspace_);
  for (CUmodule module : modules_)
    context_->api().cuModuleUnload(module);
}

Status CudaExecutable::launch(hal::Stream &stream, const std::string &kernel,
                              const hal::LaunchConfig &config, void **arguments) {
  auto *cudaStream = dynamic_cast<CudaStream *>(&stream);
  if (!cudaStream)
    return Status::error("CUDA kernels run on CUDA streams only");
  if (auto gemm = gemms_.find(kernel); gemm != gemms_.end()) {
    if (!gemm->second->gemm().argumentsWithin(config.argumentCount))
      return Status::error("library GEMM " + kernel + " names an argument past the " +
                           std::to_string(config.argumentCount) + " its step has");
    return gemm->second->run(arguments, cudaStream->handle(),
                             reinterpret_cast<void *>(gemmWorkspace_), kGemmWorkspaceBytes);
  }
  auto function = functions_.find(kernel);
  if (function == functions_.end())
    return Status::error("no kernel '" + kernel + "' in the loaded modules");
  return context_->check(context_->api().cuLaunchKernel(
                            function->second, config.grid[0], config.grid[1], config.grid[2],
                            config.block[0], config.block[1], config.block[2],
                            config.sharedBytes, cudaStream->handle(), arguments, nullptr),
                        "cuLaunchKernel");
}

} // namespace moec::rt::cuda

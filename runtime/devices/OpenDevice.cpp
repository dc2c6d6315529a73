// OpenDevice.cpp - a device of any backend, by the name users give it.
#include "runtime/devices/OpenDevice.h"
#include "runtime/cpu/CpuDevice.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cudaemu/CudaEmuDevice.h"
#include "runtime/devices/OpenChannel.h"
#include "runtime/hal/DeviceKind.h"

#include <optional>

namespace moec::rt {

StatusOr<std::unique_ptr<hal::Device>> openDevice(const std::string &name, const LoadedPlan &plan,
                                                  const std::string &flag) {
  if (name == "auto") {
    if (plan.hasGpuBinaries())
      if (auto gpu = cuda::CudaDevice::createForLocalRank(localRankFromEnvironment()); gpu)
        return std::unique_ptr<hal::Device>(std::move(*gpu));
    return std::unique_ptr<hal::Device>(cpu::CpuDevice::create());
  }
  std::optional<hal::DeviceKind> kind = hal::parseDeviceKind(name);
  if (!kind)
    return Status::error(flag + " must be auto, cpu, cuda or cuda-emu, but is '" + name + "'");
  if (*kind == hal::DeviceKind::cuda) {
    if (!plan.hasGpuCode())
      return Status::error(flag + " cuda: " + plan.path() +
                           " has no GPU code; compile it with moec --target=cuda");
    if (!plan.hasGpuBinaries())
      return Status::error(flag + " cuda: " + plan.path() +
                           " carries its kernels' CUDA sources only (moec "
                           "--kernel-binaries=false), which cuda-emu runs; compile it without "
                           "that option for a GPU");
    auto gpu = cuda::CudaDevice::createForLocalRank(localRankFromEnvironment());
    if (!gpu)
      return Status::error(flag + " cuda: " + gpu.status().message());
    return std::unique_ptr<hal::Device>(std::move(*gpu));
  }
  if (*kind == hal::DeviceKind::cudaEmu)
    return std::unique_ptr<hal::Device>(cudaemu::CudaEmuDevice::create());
  return std::unique_ptr<hal::Device>(cpu::CpuDevice::create());
}

} // namespace moec::rt

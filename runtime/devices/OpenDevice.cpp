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
  bool gpuCode = plan.root().target() && plan.root().target()->str() == "cuda";
  if (name == "auto") {
    if (gpuCode)
      if (auto gpu = cuda::CudaDevice::createForLocalRank(localRankFromEnvironment()); gpu)
        return std::unique_ptr<hal::Device>(std::move(*gpu));
    return std::unique_ptr<hal::Device>(cpu::CpuDevice::create());
  }
  std::optional<hal::DeviceKind> kind = hal::parseDeviceKind(name);
  if (!kind)
    return Status::error(flag + " must be auto, cpu, cuda or cuda-emu, but is '" + name + "'");
  if (*kind == hal::DeviceKind::cuda) {
    if (!gpuCode)
      return Status::error(flag + " cuda: " + plan.path() +
                           " has no GPU code; compile it with moec --target=cuda");
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

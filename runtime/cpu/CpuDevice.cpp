// CpuDevice.cpp - the host as a device.
#include "runtime/cpu/CpuDevice.h"
#include "runtime/cpu/CpuBuffer.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Math.h"

#include <omp.h>

#include <mutex>

namespace moec::rt::cpu {

std::unique_ptr<CpuDevice> CpuDevice::create() {
  static std::once_flag registered;
  std::call_once(registered, [] {
    registerCpuKernels(KernelRegistry::global().table(hal::DeviceKind::cpu));
  });
  return std::unique_ptr<CpuDevice>(new CpuDevice());
}

std::string CpuDevice::description() const {
  int threads = omp_get_max_threads();
  return "cpu (" + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s") + "; " +
         gemmDescription() + ")";
}

StatusOr<std::unique_ptr<hal::Buffer>> CpuDevice::allocate(size_t bytes) {
  std::unique_ptr<hal::Buffer> buffer(CpuBuffer::allocate(bytes));
  if (!buffer)
    return Status::error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  return tracked(std::move(buffer));
}

StatusOr<std::unique_ptr<hal::Stream>> CpuDevice::createStream() {
  return std::unique_ptr<hal::Stream>(new CpuStream());
}

StatusOr<std::unique_ptr<hal::Event>> CpuDevice::createEvent() {
  return std::unique_ptr<hal::Event>(new CpuEvent());
}

StatusOr<std::shared_ptr<hal::Executable>> CpuDevice::loadExecutable(const std::vector<const plan::Kernel *> &) {
  return Status::error("the cpu device runs op kernels, not generated code: run this plan "
                       "with --device cuda or --device cuda-emu");
}

} // namespace moec::rt::cpu

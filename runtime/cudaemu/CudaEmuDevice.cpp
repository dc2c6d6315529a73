// CudaEmuDevice.cpp - the host as a CUDA device for generated kernels.
#include "runtime/cudaemu/CudaEmuDevice.h"
#include "runtime/cpu/CpuBuffer.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cudaemu/EmuExecutable.h"

#include <mutex>

namespace moec::rt::cudaemu {

std::unique_ptr<CudaEmuDevice> CudaEmuDevice::create() {
  static std::once_flag registered;
  std::call_once(registered, [] {
    cpu::registerCpuKernels(KernelRegistry::global().table(hal::DeviceKind::cudaEmu));
  });
  return std::unique_ptr<CudaEmuDevice>(new CudaEmuDevice());
}

std::string CudaEmuDevice::description() const {
  return "cuda-emu (generated kernels on the host)";
}

StatusOr<std::unique_ptr<hal::Buffer>> CudaEmuDevice::allocate(size_t bytes) {
  // Like GPU memory, not host-visible: the host reaches it through copies.
  std::unique_ptr<hal::Buffer> buffer(cpu::CpuBuffer::allocate(bytes, /*hostVisible=*/false));
  if (!buffer)
    return Status::error("cuda-emu: out of memory allocating " + std::to_string(bytes) +
                         " bytes");
  return tracked(std::move(buffer));
}

StatusOr<std::unique_ptr<hal::Stream>> CudaEmuDevice::createStream() {
  return std::unique_ptr<hal::Stream>(new cpu::CpuStream());
}

StatusOr<std::unique_ptr<hal::Event>> CudaEmuDevice::createEvent() {
  return std::unique_ptr<hal::Event>(new cpu::CpuEvent());
}

StatusOr<std::shared_ptr<hal::Executable>>
CudaEmuDevice::loadExecutable(const std::vector<const plan::Kernel *> &kernels) {
  auto executable = EmuExecutable::load(kernels);
  if (!executable)
    return executable.status();
  return std::shared_ptr<hal::Executable>(std::move(*executable));
}

} // namespace moec::rt::cudaemu
